# FedDiffuse: the FID feature classifier (once per dataset), one federated DDPM per
# diffusion.grid cell, then the FID x mode x partition table and figure.
wildcard_constraints:
    mode=r"(full|usplit|udec|ulatdec)(\+[A-Za-z0-9][A-Za-z0-9_.-]*)?",
    ctag=r"[^/]+",


rule fid_classifier:
    input:
        "results/data/{dataset}.h5",
    output:
        model="results/fid_classifier/{dataset}/{ctag}/model.safetensors",
        info="results/fid_classifier/{dataset}/{ctag}/info.json",
    log:
        f"{LOG_DIR}/fid_classifier/{{dataset}}/{{ctag}}.log",
    benchmark:
        f"{BENCH_DIR}/fid_classifier/{{dataset}}/{{ctag}}.tsv"
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        feddiff=FEDDIFF,
        settings=fid_classifier_settings,
        out_dir=subpath(output.model, parent=True),
    shell:
        "{params.feddiff} fid-classifier --data {input:q} --settings {params.settings:q}"
        " --threads {threads} --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule diffuse_train:
    input:
        unpack(diffusion_inputs),
    output:
        metrics="results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/metrics.csv",
        communication="results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/communication.csv",
        fid="results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/fid.json",
        info="results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/run.json",
        model=directory("results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/model"),
        samples=directory("results/diffusion/{dataset}/{ptag}/{mode}/{ttag}/seed{seed}/samples"),
    log:
        f"{LOG_DIR}/diffuse_train/{{dataset}}/{{ptag}}/{{mode}}/{{ttag}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH_DIR}/diffuse_train/{{dataset}}/{{ptag}}/{{mode}}/{{ttag}}/seed{{seed}}.tsv"
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=480,
    params:
        feddiff=FEDDIFF,
        settings=diffusion_settings,
        labels=diffusion_labels,
        classifier=subpath(input.classifier, parent=True),
        out_dir=subpath(output.metrics, parent=True),
    shell:
        "{params.feddiff} diffuse-train --data {input.data:q} --partition {input.partition:q}"
        " --classifier {params.classifier:q} --settings {params.settings:q}"
        " --labels {params.labels:q} --threads {threads} --no-progress"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


rule diffuse_report:
    input:
        diffusion_metrics(),
    output:
        [flag_for_html_report(path) for path in DIFFUSION_REPORT],
    log:
        f"{LOG_DIR}/diffuse_report.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        feddiff=FEDDIFF,
        manifest=diffusion_manifest(),
    shell:
        "{params.feddiff} diffuse-report --manifest {params.manifest:q}"
        " --tables-dir results/tables --figures-dir results/figures > {log:q} 2>&1"
