rule partition:
    input:
        paths.DATA,
    output:
        assignment=paths.PARTITION,
        counts=paths.PARTITION_COUNTS,
        heatmap=report(
            paths.PARTITION_HEATMAP,
            caption="../workflow/report/partition_heatmap.rst",
            category="Partitions",
            subcategory="{dataset}",
            labels=partition_labels,
        ),
    log:
        paths.log("partition", paths.PARTITION_KEY),
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        feddiff=FEDDIFF,
        setting=partition_setting,
        name=partition_name,
        out_dir=subpath(output.assignment, parent=True),
    shell:
        "{params.feddiff} partition --data {input:q} --setting {params.setting:q}"
        " --seed {wildcards.seed} --name {params.name:q} --out-dir {params.out_dir:q} > {log:q} 2>&1"


# Multi-domain datasets (`source: domains`): the stage also writes samples per client
# and domain (feddiff.stages.make_partition), declared and shown in the report only for
# them; the same job, so ruleorder picks this rule for their partitions.
if DOMAIN_DATASETS:

    use rule partition as partition_domains with:
        output:
            assignment=paths.PARTITION,
            counts=paths.PARTITION_COUNTS,
            heatmap=report(
                paths.PARTITION_HEATMAP,
                caption="../workflow/report/partition_heatmap.rst",
                category="Partitions",
                subcategory="{dataset}",
                labels=partition_class_labels,
            ),
            domain_counts=paths.DOMAIN_COUNTS,
            domain_heatmap=report(
                paths.DOMAIN_HEATMAP,
                caption="../workflow/report/partition_domain_heatmap.rst",
                category="Partitions",
                subcategory="{dataset}",
                labels=partition_domain_labels,
            ),
        wildcard_constraints:
            dataset=domain_datasets_pattern(),

    ruleorder: partition_domains > partition
