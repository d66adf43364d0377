rule prepare_data:
    output:
        paths.DATA,
    log:
        paths.log("prepare_data", paths.DATA_KEY),
    benchmark:
        paths.benchmark("prepare_data", paths.DATA_KEY)
    conda:
        "../environment.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        feddiff=FEDDIFF,
        spec=dataset_spec,
        resources=config["resources_dir"],
    shell:
        "{params.feddiff} prepare --spec {params.spec:q} --out {output:q}"
        " --resources {params.resources:q} --workers {threads} > {log:q} 2>&1"
