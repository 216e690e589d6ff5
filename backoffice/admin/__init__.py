"""The back office's admins (issue 16): every admin composed of several apps'
parts, each registered once, here. The lower apps keep plain classes, inlines,
filters and link helpers and register only the admins nothing above extends.

- ``accounts``: the account admin (billing's ``AccountAdmin``, renewals'
  renewing top-up, the 360 page as its change page);
- ``subscriptions``: the subscription admin with the notice state and notices;
- ``notices``: the notice admin, acknowledging what staff record (P5);
- ``calendar``: the calendar years (workdays models, notices services);
- ``beat``, ``users``: the third-party models' admins replaced, once.
"""

from . import accounts, beat, calendar, notices, subscriptions, users

__all__ = ["accounts", "beat", "calendar", "notices", "subscriptions", "users"]
