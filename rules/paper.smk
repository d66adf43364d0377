# Paper comparisons: for every `paper: {table, values}` link (experiments.<name>.paper,
# diffusion.paper) the paper's numbers beside ours, from the accuracy or FID table, as
# results/tables/paper_<table>.{csv,md,tex} and an HTML page for the report. Links and
# input functions: rules/report_common.smk.
wildcard_constraints:
    table=r"[A-Za-z0-9][A-Za-z0-9_.-]*",


rule paper_table:
    input:
        unpack(paper_inputs),
    output:
        csv="results/tables/paper_{table}.csv",
        md="results/tables/paper_{table}.md",
        tex="results/tables/paper_{table}.tex",
    log:
        f"{LOG_DIR}/paper_table/{{table}}.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        feddiff=FEDDIFF,
        kind=lambda wildcards: paper_link(wildcards).kind,
        groups=lambda wildcards: ",".join(paper_link(wildcards).groups),
        last_k=config["last_k"],
        tables_dir=subpath(output.csv, parent=True),
    shell:
        "{params.feddiff} paper-table --kind {params.kind} --results {input.results:q}"
        " --values {input.values:q} --table {wildcards.table:q} --groups {params.groups:q}"
        " --last-k {params.last_k} --tables-dir {params.tables_dir:q} > {log:q} 2>&1"


rule paper_table_html:
    input:
        "results/tables/paper_{table}.md",
    output:
        report(
            "results/tables/paper_{table}.html",
            caption="../workflow/report/paper_table.rst",
            category="Paper comparison",
            subcategory="Tables",
            labels=lambda wildcards: {"table": wildcards.table},
        ),
    log:
        f"{LOG_DIR}/paper_table_html/{{table}}.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    params:  # for the caption (workflow/report/paper_table.rst)
        kind=lambda wildcards: paper_link(wildcards).kind,
        groups=lambda wildcards: ", ".join(paper_link(wildcards).groups),
        values_file=lambda wildcards: paper_link(wildcards).values,
    script:
        "../workflow/scripts/table_html.py"
