# FedDifRC's diffusion features: extracted once per (features entry, dataset), then
# figures of them. The train rule takes the .h5 as an input of every feddifrc run.
wildcard_constraints:
    backbone=r"stable_diffusion|ddpm",
    ftag=r"[^/]+",


rule extract_features:
    input:
        unpack(features_inputs),
    output:
        "results/features/{dataset}/{backbone}/{ftag}.h5",
    log:
        f"{LOG_DIR}/extract_features/{{dataset}}/{{backbone}}/{{ftag}}.log",
    benchmark:
        f"{BENCH_DIR}/extract_features/{{dataset}}/{{backbone}}/{{ftag}}.tsv"
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=16000,
        runtime=480,
    params:
        feddiff=FEDDIFF,
        spec=features_spec,
        name=features_name,
    shell:
        "{params.feddiff} extract-features --data {input.data:q} --spec {params.spec:q}"
        " --name {params.name:q} --out {output:q} --threads {threads} --no-progress > {log:q} 2>&1"


rule feature_figures:
    input:
        "results/features/{dataset}/{backbone}/{ftag}.h5",
    output:
        tsne=report(
            "results/features/{dataset}/{backbone}/{ftag}/tsne.png",
            caption="../workflow/report/features_tsne.rst",
            category="Diffusion features",
            subcategory="{dataset}",
            labels=lambda wildcards: {
                "features": features_name(wildcards),
                "backbone": wildcards.backbone,
                "view": "t-SNE",
            },
        ),
        pca=report(
            "results/features/{dataset}/{backbone}/{ftag}/pca.png",
            caption="../workflow/report/features_pca.rst",
            category="Diffusion features",
            subcategory="{dataset}",
            labels=lambda wildcards: {
                "features": features_name(wildcards),
                "backbone": wildcards.backbone,
                "view": "PCA",
            },
        ),
        others=[
            f"results/features/{{dataset}}/{{backbone}}/{{ftag}}/{name}"
            for name in FIGURE_FILES
            if name not in ("tsne.png", "pca.png")
        ],
    log:
        f"{LOG_DIR}/feature_figures/{{dataset}}/{{backbone}}/{{ftag}}.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        feddiff=FEDDIFF,
        out_dir=subpath(output.tsne, parent=True),
    shell:
        "{params.feddiff} feature-figures --features {input:q} --out-dir {params.out_dir:q}"
        " --threads {threads} > {log:q} 2>&1"
