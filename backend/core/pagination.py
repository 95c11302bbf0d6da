from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import PageNumberPagination

from backend.core import errors


class Pagination(PageNumberPagination):
    """Pages of 50 (page_size up to 500; more is a 400). A page or page_size that is not a positive integer
    answers 400 naming the parameter (DRF said 404 "Invalid page." for page=abc and silently used
    the default for page_size=abc); a page past the end stays 404, with how many there are
    (`last_page` in the body)."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500

    def paginate_queryset(self, queryset, request, view=None):
        for name, also in ((self.page_query_param, self.last_page_strings), (self.page_size_query_param, ())):
            if len(request.query_params.getlist(name)) > 1:
                raise ValidationError({name: [f"'{name}' is sent more than once; send it once."]})
            raw = request.query_params.get(name)
            if raw is not None and raw not in also and not _positive_int(raw):
                raise ValidationError({name: [f"must be a positive integer, got {raw[:40]!r}."]})
        size = request.query_params.get(self.page_size_query_param)
        if size is not None and int(size) > self.max_page_size:  # was cut to 500 without a word
            raise ValidationError({self.page_size_query_param: [f"is at most {self.max_page_size}, got {size}."]})
        try:
            return super().paginate_queryset(queryset, request, view)
        except NotFound:
            pages = self.django_paginator_class(queryset, self.get_page_size(request)).num_pages
            # last_page: a client whose last page emptied (its rows deleted) goes there.
            raise errors.NotFound(f"There is no page {request.query_params[self.page_query_param]}; "
                                  f"the last is {pages}.", extra={"last_page": pages}) from None


def _positive_int(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) <= 12 and int(raw) > 0
