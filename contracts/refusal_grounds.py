"""Why a provider refuses to share data, as a type: the grounds a refusal of a sharing request names. Some are
binding in law (no joint meeting may order the data shared), the others are the provider's judgement, which the
coordination office may overrule with conditions.

The gateway keeps a refusal's (or a counter-offer's) ground as this type beside its free-text reasons, and tells
it in ``exchange.agreement-changed`` and ``exchange.refusal-escalated``: decisions read the ground, never the
reasons' wording."""

from __future__ import annotations

from enum import StrEnum


class SharingGround(StrEnum):
    # binding: the law forbids sharing the data with this consumer for this purpose
    NO_LEGAL_BASIS = "no_legal_basis"  # the law cited gives the consumer no power over this data (条例 第十三条)
    PERSONAL_INFORMATION = "personal_information"  # more personal information than the purpose needs (个保法 第六条)
    # the provider's judgement: the coordination office may order it shared, with conditions
    NOT_NECESSARY = "not_necessary"  # the consumer can do its task without it
    NO_CASE_NAMED = "no_case_named"  # the provider cannot tell which case the data is for
    VERTICAL_SYSTEM = "vertical_system"  # held in a ministry-run system: the provider wants its ministry's consent
    UNVERIFIED = "unverified"  # the provider will not vouch for the data's accuracy (fear of responsibility)

    @property
    def binding(self) -> bool:
        return self in BINDING


BINDING = frozenset({SharingGround.NO_LEGAL_BASIS, SharingGround.PERSONAL_INFORMATION})

