from django.conf import settings


def chain(request):
    return {"CHAIN_ID": settings.CHAIN_ID}
