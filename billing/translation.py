from modeltranslation.translator import TranslationOptions, register

from billing.models import TariffPlan


@register(TariffPlan)
class TariffPlanTranslationOptions(TranslationOptions):
    fields = ("name", "description")
    required_languages = ("en",)
