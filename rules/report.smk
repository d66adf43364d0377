rule report:
    input:
        run_metrics(),
    output:
        [flag_for_html_report(path) for path in report_outputs() + domain_table_outputs()],
    log:
        f"{LOG_DIR}/report.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        feddiff=FEDDIFF,
        manifest=report_manifest(),
        last_k=config["last_k"],
    shell:
        "{params.feddiff} report --manifest {params.manifest:q} --last-k {params.last_k}"
        " --tables-dir results/tables --figures-dir results/figures > {log:q} 2>&1"
