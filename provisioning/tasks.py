from django_tasks import task

from provisioning.services import operation_run


@task()
def run_operation(operation_id: int) -> None:
    operation_run(operation_id=operation_id)
