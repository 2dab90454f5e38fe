from django import template

from billing.money import money_format

register = template.Library()


@register.filter
def money(amount, currency=""):
    """`{{ balance|money:client.currency }}` → 1,000.00 RUB (en), 1 000,00 RUB (ru)."""
    return money_format(amount, currency)
