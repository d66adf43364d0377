# The report stage: the accuracy tables (csv, md, tex and the HTML page the report shows),
# the per-domain tables and the figures. Functions: rules/report_common.smk.
rule report:
    input:
        run_metrics(),
    output:
        [flag_for_html_report(path) for path in report_rule_outputs()],
    log:
        paths.log("report"),
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
        f" --tables-dir {paths.TABLES} --figures-dir {paths.FIGURES} > {{log:q}} 2>&1"


# One figure per federated DDPM run of its sample grids (diffuse_train writes them into a
# directory, which a report cannot caption).
rule diffusion_samples:
    input:
        samples=paths.DIFFUSION_SAMPLES,
        fid=paths.DIFFUSION_FID,
    output:
        png=report(
            paths.partial(paths.DIFFUSION_SAMPLE_FIGURE, ext="png"),
            caption="../workflow/report/diffusion_samples.rst",
            category="FedDiffuse",
            subcategory="Samples",
            labels=diffusion_sample_labels,
        ),
        pdf=paths.partial(paths.DIFFUSION_SAMPLE_FIGURE, ext="pdf"),
    log:
        paths.log("diffusion_samples", paths.DIFFUSION_KEY),
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        feddiff=FEDDIFF,
        run_dir=subpath(input.fid, parent=True),
        title=diffusion_sample_title,
    shell:
        "{params.feddiff} sample-figure --run-dir {params.run_dir:q} --out {output.png:q}"
        " --title {params.title:q} > {log:q} 2>&1"
