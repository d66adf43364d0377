# Paper comparisons: for every `paper: {table, values}` link (experiments.<name>.paper,
# diffusion.paper) the paper's numbers beside ours, from the accuracy or FID table, as
# results/tables/paper_<table>.{csv,md,tex,html} (the .html page for the report). Links:
# feddiff.plan.Plan.paper_links; lookups: rules/common.smk.
rule paper_table:
    input:
        unpack(paper_table_inputs),
    output:
        csv=paths.partial(paths.PAPER_TABLE, ext="csv"),
        md=paths.partial(paths.PAPER_TABLE, ext="md"),
        tex=paths.partial(paths.PAPER_TABLE, ext="tex"),
        html=flag_for_html_report(paths.partial(paths.PAPER_TABLE, ext="html")),
    log:
        paths.log("paper_table", paths.PAPER_KEY),
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        feddiff=FEDDIFF,
        kind=paper_kind,
        groups=paper_groups,
        last_k=config["last_k"],
        tables_dir=subpath(output.csv, parent=True),
    shell:
        "{params.feddiff} paper-table --kind {params.kind} --results {input.results:q}"
        " --values {input.values:q} --table {wildcards.table:q} --groups {params.groups:q}"
        " --last-k {params.last_k} --tables-dir {params.tables_dir:q} > {log:q} 2>&1"
