# FedDDPM's auxiliary sets: per (entry, dataset, partition, seed), the clients' DDPMs
# are trained and sampled (or Stable Diffusion prompted) once; fedddpm runs and
# calibrated federated DDPM runs take the .h5 as an input.
wildcard_constraints:
    atag=r"[^/]+",


rule generate_auxiliary:
    input:
        unpack(auxiliary_inputs),
    output:
        h5="results/auxiliary/{dataset}/{ptag}/seed{seed}/{atag}.h5",
        counts="results/auxiliary/{dataset}/{ptag}/seed{seed}/{atag}/counts.csv",
        grid=report(
            "results/auxiliary/{dataset}/{ptag}/seed{seed}/{atag}/grid.png",
            caption="../workflow/report/auxiliary_grid.rst",
            category="FedDDPM",
            subcategory="Auxiliary sets",
            labels=lambda wildcards: {
                "dataset": wildcards.dataset,
                "partition": auxiliary_of(wildcards).partition_name,
                "seed": wildcards.seed,
                "set": auxiliary_of(wildcards).name,
            },
        ),
    log:
        f"{LOG_DIR}/generate_auxiliary/{{dataset}}/{{ptag}}/seed{{seed}}/{{atag}}.log",
    benchmark:
        f"{BENCH_DIR}/generate_auxiliary/{{dataset}}/{{ptag}}/seed{{seed}}/{{atag}}.tsv"
    conda:
        "../environment.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=240,
    params:
        feddiff=FEDDIFF,
        settings=auxiliary_settings,
    shell:
        "{params.feddiff} generate-auxiliary --data {input.data:q} --partition {input.partition:q}"
        " --settings {params.settings:q} --out {output.h5:q} --threads {threads} --no-progress"
        " > {log:q} 2>&1"
