# More of the HTML report (`snakemake --report report.html`): the FedDiffuse FID table and
# the features' K-means table as pages (the Markdown the stages write, rendered by
# workflow/scripts/table_html.py), and one figure per federated DDPM run of its sample
# grids (diffuse_train writes them into a directory, which a report cannot caption).


rule diffusion_fid_html:
    input:
        "results/tables/diffusion_fid.md",
    output:
        report(
            "results/tables/diffusion_fid.html",
            caption="../workflow/report/diffusion_fid_table.rst",
            category="FedDiffuse",
            subcategory="FID and communication",
            labels={"item": "table (mean ± std over seeds)"},
        ),
    log:
        f"{LOG_DIR}/diffusion_fid_html.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/table_html.py"


rule kmeans_html:
    input:
        "results/features/{dataset}/{backbone}/{ftag}/kmeans.md",
    output:
        report(
            "results/features/{dataset}/{backbone}/{ftag}/kmeans.html",
            caption="../workflow/report/features_kmeans.rst",
            category="Diffusion features",
            subcategory="{dataset}",
            labels=lambda wildcards: {
                "features": features_name(wildcards),
                "backbone": wildcards.backbone,
                "view": "K-means table",
            },
        ),
    log:
        f"{LOG_DIR}/kmeans_html/{{dataset}}/{{backbone}}/{{ftag}}.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/table_html.py"


rule diffusion_samples:
    input:
        samples="results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/samples",
        fid="results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/fid.json",
    output:
        png=report(
            "results/figures/diffusion_samples/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}.png",
            caption="../workflow/report/diffusion_samples.rst",
            category="FedDiffuse",
            subcategory="Samples",
            # mode first: the report would turn a later two-valued label into a toggle
            labels=lambda wildcards: {
                "mode": wildcards.mode,
                "dataset": wildcards.dataset,
                "partition": diffusion_run_of(wildcards).partition,
                "seed": wildcards.seed,
            },
        ),
        pdf="results/figures/diffusion_samples/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}.pdf",
    log:
        f"{LOG_DIR}/diffusion_samples/{{dataset}}/{{ptag}}/{{mode}}/{{ttag}}/seed{{seed}}.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        feddiff=FEDDIFF,
        run_dir=subpath(input.fid, parent=True),
        title=lambda wildcards: (
            f"{wildcards.dataset} · {diffusion_run_of(wildcards).partition} · "
            f"{wildcards.mode} · seed {wildcards.seed}"
        ),
    shell:
        "{params.feddiff} sample-figure --run-dir {params.run_dir:q} --out {output.png:q}"
        " --title {params.title:q} > {log:q} 2>&1"


# The per-domain accuracy table (multi-domain datasets) as a page, like rule table_html.
rule domain_table_html:
    input:
        "results/tables/accuracy_domains.md",
    output:
        report(
            "results/tables/accuracy_domains.html",
            caption="../workflow/report/accuracy_domains_table.rst",
            category="Accuracy",
            subcategory="Tables",
            labels={"table": "accuracy per domain (mean ± std over seeds)"},
        ),
    log:
        f"{LOG_DIR}/domain_table_html.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/table_html.py"
