rule prepare_data:
    output:
        "results/data/{dataset}.h5",
    log:
        f"{LOG_DIR}/prepare_data/{{dataset}}.log",
    benchmark:
        f"{BENCH_DIR}/prepare_data/{{dataset}}.tsv"
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
