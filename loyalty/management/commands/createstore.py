from django.core.management.base import CommandError
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from loyalty.management.base import TranslatedCommand
from loyalty.models import Store
from loyalty.services.stores import store_create


class Command(TranslatedCommand):
    help = _("Create a store and print its new API key alone on the last line (shown only once).")

    def add_arguments(self, parser):
        parser.add_argument("name", help=gettext("the store's name, unique"))

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > Store._meta.get_field("name").max_length:
            raise CommandError(gettext("A store name is 1 to 100 characters."))
        if Store.objects.filter(name=name).exists():
            raise CommandError(gettext("A store named %(name)r exists already.") % {"name": name})
        store, key = store_create(name=name)
        self.stdout.write(
            gettext("Created store %(name)r (id %(id)s). Its API key, shown only once:")
            % {"name": store.name, "id": store.pk}
        )
        self.stdout.write(key)
