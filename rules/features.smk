# FedDifRC's diffusion features: extracted once per (features entry, dataset), then
# figures of them. The train rule takes the .h5 as an input of every feddifrc run.
rule extract_features:
    input:
        unpack(features_inputs),
    output:
        paths.FEATURES,
    log:
        paths.log("extract_features", paths.FEATURES_KEY),
    benchmark:
        paths.benchmark("extract_features", paths.FEATURES_KEY)
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
        paths.FEATURES,
    output:
        tsne=report(
            paths.FEATURES_TSNE,
            caption="../workflow/report/features_tsne.rst",
            category="Diffusion features",
            subcategory="{dataset}",
            labels=features_tsne_labels,
        ),
        pca=report(
            paths.FEATURES_PCA,
            caption="../workflow/report/features_pca.rst",
            category="Diffusion features",
            subcategory="{dataset}",
            labels=features_pca_labels,
        ),
        others=[
            flag_for_html_report(path)
            for path in paths.FEATURE_FIGURES
            if path not in (paths.FEATURES_TSNE, paths.FEATURES_PCA)
        ],
    log:
        paths.log("feature_figures", paths.FEATURES_KEY),
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
