from django_tasks import task

from billing.webhooks.delivery import delivery_attempt


@task()
def deliver_webhook(delivery_id: int) -> None:
    delivery_attempt(delivery_id=delivery_id)
