rule partition:
    input:
        "results/data/{dataset}.h5",
    output:
        assignment="results/partitions/{dataset}/{ptag}/seed{seed}/partition.npz",
        counts="results/partitions/{dataset}/{ptag}/seed{seed}/counts.csv",
        heatmap=report(
            "results/partitions/{dataset}/{ptag}/seed{seed}/heatmap.png",
            caption="../workflow/report/partition_heatmap.rst",
            category="Partitions",
            subcategory="{dataset}",
            labels=lambda wildcards: {
                "partition": partition_name(wildcards),
                "seed": wildcards.seed,
            },
        ),
    log:
        f"{LOG_DIR}/partition/{{dataset}}/{{ptag}}/seed{{seed}}.log",
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


import re

# Multi-domain datasets (`source: domains`): the stage also writes samples per client
# and domain (feddiff.stages.make_partition), declared and shown in the report only for
# them; the same job, so ruleorder picks this rule for their partitions.
DOMAIN_DATASETS = sorted(
    name for name, spec in config["datasets"].items() if spec.get("source") == "domains"
)

if DOMAIN_DATASETS:

    use rule partition as partition_domains with:
        output:
            assignment="results/partitions/{dataset}/{ptag}/seed{seed}/partition.npz",
            counts="results/partitions/{dataset}/{ptag}/seed{seed}/counts.csv",
            heatmap=report(
                "results/partitions/{dataset}/{ptag}/seed{seed}/heatmap.png",
                caption="../workflow/report/partition_heatmap.rst",
                category="Partitions",
                subcategory="{dataset}",
                labels=lambda wildcards: {
                    "partition": partition_name(wildcards),
                    "seed": wildcards.seed,
                    "view": "classes",
                },
            ),
            domain_counts="results/partitions/{dataset}/{ptag}/seed{seed}/domain_counts.csv",
            domain_heatmap=report(
                "results/partitions/{dataset}/{ptag}/seed{seed}/domain_heatmap.png",
                caption="../workflow/report/partition_domain_heatmap.rst",
                category="Partitions",
                subcategory="{dataset}",
                labels=lambda wildcards: {
                    "partition": partition_name(wildcards),
                    "seed": wildcards.seed,
                    "view": "domains",
                },
            ),
        wildcard_constraints:
            dataset="|".join(re.escape(name) for name in DOMAIN_DATASETS),

    ruleorder: partition_domains > partition
