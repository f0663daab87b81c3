"""Deployments under test: the `prefect.yaml` gate, `assert_deployable`, and running deployments in-process.

`checks` (plain functions, no pytest), `entrypoints` (loading a deployment's flow the way Prefect
does), `running` (registering deployments on the test backend and running their flow runs as a
worker would) and `items` (the pytest items of `--prefect-check-deployments`).
"""
