"""The Billing view: a FastAPI app the api-server mounts for the ``rafay_billing`` plugin.

Imported only by the api-server (through the plugin's lazy mount), never at plugin load: ``queries``,
``charts`` and ``reports`` are Airflow-free (unit-tested over a real PostgreSQL); ``auth`` and ``app``
use Airflow's auth manager, connection and Variable.
"""
