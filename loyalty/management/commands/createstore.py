from django.core.management.base import BaseCommand, CommandError

from loyalty.models import Store
from loyalty.services.stores import store_create


class Command(BaseCommand):
    help = "Create a store and print its new API key alone on the last line (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("name", help="the store's name, unique")

    def handle(self, *args, name, **options):
        name = name.strip()
        if not name or len(name) > Store._meta.get_field("name").max_length:
            raise CommandError("A store name is 1 to 100 characters.")
        if Store.objects.filter(name=name).exists():
            raise CommandError(f"A store named {name!r} exists already.")
        store, key = store_create(name=name)
        self.stdout.write(
            f"Created store {store.name!r} (id {store.pk}). Its API key, shown only once:"
        )
        self.stdout.write(key)
