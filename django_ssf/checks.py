"""Django system checks for django-ssf configuration mistakes."""
