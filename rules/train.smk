rule train:
    input:
        unpack(run_inputs),
    output:
        metrics=paths.RUN_METRICS,
        model=paths.RUN_MODEL,
        info=paths.RUN_INFO,
    log:
        paths.log("train", paths.RUN_KEY),
    benchmark:
        paths.benchmark("train", paths.RUN_KEY)
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        feddiff=FEDDIFF,
        settings=run_settings,
        labels=run_labels,
        out_dir=subpath(output.metrics, parent=True),
    shell:
        "{params.feddiff} train --data {input.data:q} --partition {input.partition:q}"
        " --settings {params.settings:q} --labels {params.labels:q} --threads {threads}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
