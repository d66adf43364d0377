# FedDiffuse: the FID feature classifier (once per dataset), one federated DDPM per
# diffusion.grid cell, then the FID x mode x partition table and figure.
rule fid_classifier:
    input:
        paths.DATA,
    output:
        model=paths.CLASSIFIER_MODEL,
        info=paths.CLASSIFIER_INFO,
    log:
        paths.log("fid_classifier", paths.CLASSIFIER_KEY),
    benchmark:
        paths.benchmark("fid_classifier", paths.CLASSIFIER_KEY)
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
        metrics=paths.DIFFUSION_METRICS,
        communication=paths.DIFFUSION_COMMUNICATION,
        fid=paths.DIFFUSION_FID,
        info=paths.DIFFUSION_INFO,
        model=directory(paths.DIFFUSION_MODEL),
        samples=directory(paths.DIFFUSION_SAMPLES),
    log:
        paths.log("diffuse_train", paths.DIFFUSION_KEY),
    benchmark:
        paths.benchmark("diffuse_train", paths.DIFFUSION_KEY)
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
        [flag_for_html_report(path) for path in diffusion_report_outputs()],
    log:
        paths.log("diffuse_report"),
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
        f" --tables-dir {paths.TABLES} --figures-dir {paths.FIGURES} > {{log:q}} 2>&1"
