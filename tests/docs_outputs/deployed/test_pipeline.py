from my_flows.pipeline import my_flow


def test_pipeline():
    state = my_flow(return_state=True)
    assert state.is_completed()
    assert state.result() == 42


def test_pipeline_twice():
    assert my_flow() + my_flow() == 84
