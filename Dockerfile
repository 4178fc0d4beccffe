# Image for every service of docker-compose.yaml (Airflow components and the demo Rafay simulator).
#
#   docker compose build          (or: docker build -t rafay-billing-airflow:3.3.2 .)
#
# The official Airflow image, plus the project's pinned runtime lock and the project's wheel (no
# test tools: those are in requirements-dev.txt, which the image never installs). The tag's
# Airflow version must equal `apache-airflow==` in requirements.txt (tests/test_compose.py checks
# it), so installing the lock keeps the image's Airflow. The image's preinstalled providers stay,
# among them the Celery provider that CeleryExecutor needs (checked at the end of the build).
FROM apache/airflow:3.3.2-python3.11

USER airflow
WORKDIR /opt/airflow

# Dependencies first: this layer is rebuilt only when the runtime lock changes.
COPY --chown=airflow:0 requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir -r /opt/airflow/requirements.txt

# The project as a wheel built from include/ and plugins/ (no dependencies: they are all in the lock). The wheel
# carries the SQL and templates as package data and registers the `rafay` connection type
# (entry point `apache_airflow_provider`), the UI plugin (`airflow.plugins`) and the
# `rafay-billing` / `rafay-simulator` scripts. Nothing goes into Airflow's plugins folder: a wheel
# deployment on a managed Airflow works the same way (README, "Deploying to a managed Airflow").
COPY --chown=airflow:0 pyproject.toml README.md /opt/airflow/src-build/
COPY --chown=airflow:0 include /opt/airflow/src-build/include
COPY --chown=airflow:0 plugins /opt/airflow/src-build/plugins
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels /opt/airflow/src-build \
    && pip install --no-cache-dir --no-deps /tmp/wheels/rafay_billing-*.whl \
    && rm -rf /tmp/wheels /opt/airflow/src-build
COPY --chown=airflow:0 dags /opt/airflow/dags

# Mount points of the named volumes `billing-data` (landing root) and `airflow-auth` (UI login):
# a new named volume takes the owner and mode of the image's directory, and the compose file runs
# the containers as ${AIRFLOW_UID}:0, so the directories are group (0) writable.
RUN mkdir -p /opt/airflow/billing-data /opt/airflow/auth \
    && chmod 0775 /opt/airflow/billing-data /opt/airflow/auth

# Fail the build, not the first DAG run, when the image is inconsistent.
RUN python -c "import os, importlib.metadata as md; \
v = md.version('apache-airflow'); \
assert v == os.environ['AIRFLOW_VERSION'], f'lock changed Airflow {os.environ[\"AIRFLOW_VERSION\"]} to {v}'; \
md.version('apache-airflow-providers-celery'); \
assert 'rafay-billing' in {e.name for e in md.entry_points(group='console_scripts')}, 'no rafay-billing'; \
assert any(e.value.startswith('rafay_provider') for e in md.entry_points(group='apache_airflow_provider')), 'no rafay provider'"
