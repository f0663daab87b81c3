"""Read connection settings from a Prefect Variable and the password from a Secret block.

Prefect 3 removed the JSON and String blocks: structured, non-secret configuration lives in a
Variable (any JSON value), secrets in a `Secret` block. The secret is loaded inside the task that
needs it, so it never becomes a task parameter (parameters are stored and shown in the UI).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.blocks.system import Secret
from prefect.variables import Variable
from pydantic import BaseModel
from sqlalchemy.engine import URL

CONFIG_VARIABLE = "database-config"
PASSWORD_SECRET = "database-password"


class DatabaseConfig(BaseModel):
    host: str
    database: str
    user: str
    port: int = 5432
    driver: str = "postgresql+psycopg"


class MissingConfigError(LookupError):
    """The configuration Variable is not set."""


@task(name="load_database_config")
def load_database_config(variable_name: str = CONFIG_VARIABLE) -> DatabaseConfig:
    """The non-secret settings, validated."""
    value: Any = Variable.get(variable_name, default=None)
    if value is None:
        raise MissingConfigError(
            f"Prefect variable {variable_name!r} is not set; create it with "
            f'`prefect variable set {variable_name} \'{{"host": ..., "database": ..., "user": ...}}\'`'
        )
    return DatabaseConfig.model_validate(value)


@task(name="build_connection_url")
def build_connection_url(config: DatabaseConfig, secret_name: str = PASSWORD_SECRET) -> str:
    """The connection URL with the password hidden; the password itself stays inside this task."""
    password = Secret.load(secret_name).get()
    url = URL.create(
        config.driver,
        username=config.user,
        password=password,
        host=config.host,
        port=config.port,
        database=config.database,
    )
    # A real flow would connect here, e.g. sqlalchemy.create_engine(url); we only show what it targets.
    masked = url.render_as_string(hide_password=True)
    get_run_logger().info("Connecting to %s", masked)
    return masked


@flow(name="configured-connection")
def configured_connection(variable_name: str = CONFIG_VARIABLE, secret_name: str = PASSWORD_SECRET) -> str:
    """Load configuration and credentials, return the (masked) URL it would connect to."""
    config = load_database_config(variable_name)
    return build_connection_url(config, secret_name)
