from django_tasks import task

from billing.notifications import notification_send


@task()
def send_notification(notification_id: int) -> None:
    notification_send(notification_id=notification_id)
