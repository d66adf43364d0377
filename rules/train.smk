rule train:
    input:
        unpack(run_inputs),
    output:
        metrics="results/runs/{dataset}/{ptag}/{mtag}/{ttag}/seed{seed}/metrics.csv",
        model="results/runs/{dataset}/{ptag}/{mtag}/{ttag}/seed{seed}/model.safetensors",
        info="results/runs/{dataset}/{ptag}/{mtag}/{ttag}/seed{seed}/run.json",
    log:
        f"{LOG_DIR}/train/{{dataset}}/{{ptag}}/{{mtag}}/{{ttag}}/seed{{seed}}.log",
    benchmark:
        f"{BENCH_DIR}/train/{{dataset}}/{{ptag}}/{{mtag}}/{{ttag}}/seed{{seed}}.tsv"
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
