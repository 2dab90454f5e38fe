from tests.factories import ServiceFactory, TariffResourceFactory


def test_factories_build_a_consistent_service(db):
    service = ServiceFactory()
    TariffResourceFactory(tariff=service.tariff)
    assert service.tariff.processing_module.product_type == service.tariff.product_type
    assert service.tariff.prices.count() == 1
