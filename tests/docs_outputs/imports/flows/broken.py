from prefect import flow

# a typo the import check catches before any deployment does
RETRIES = = 2


@flow(retries=RETRIES)
def nightly():
    return 1
