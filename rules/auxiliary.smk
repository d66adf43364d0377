# FedDDPM's auxiliary sets: per (entry, dataset, partition, seed), the clients' DDPMs
# are trained and sampled (or Stable Diffusion prompted) once; fedddpm runs and
# calibrated federated DDPM runs take the .h5 as an input.
rule generate_auxiliary:
    input:
        unpack(auxiliary_inputs),
    output:
        h5=paths.AUXILIARY,
        counts=paths.AUXILIARY_COUNTS,
        grid=report(
            paths.AUXILIARY_GRID,
            caption="../workflow/report/auxiliary_grid.rst",
            category="FedDDPM",
            subcategory="Auxiliary sets",
            labels=auxiliary_labels,
        ),
    log:
        paths.log("generate_auxiliary", paths.AUXILIARY_KEY),
    benchmark:
        paths.benchmark("generate_auxiliary", paths.AUXILIARY_KEY)
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
