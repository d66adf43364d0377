# The accuracy table as a web page, so the HTML report (`snakemake --report`) shows it
# rendered: the same Markdown the report stage writes, converted by a stdlib-only script.
rule table_html:
    input:
        "results/tables/accuracy.md",
    output:
        report(
            "results/tables/accuracy.html",
            caption="../workflow/report/accuracy_table.rst",
            category="Accuracy",
            subcategory="Tables",
            labels={"table": "accuracy (mean ± std over seeds)"},
        ),
    log:
        f"{LOG_DIR}/table_html.log",
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=500,
        runtime=5,
    script:
        "../workflow/scripts/table_html.py"
