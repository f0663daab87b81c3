from flows.etl import etl_flow


def test_etl(run_flow):
    assert run_flow(etl_flow).result() == 3
