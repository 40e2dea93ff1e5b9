"""Regenerate seeds/reference/country_calling_codes.csv from the phonenumbers library's metadata.

One row per ISO 3166-1 alpha-2 region: the country calling code, the national trunk prefix
(dialled before a national number and dropped in E.164; empty where the country has none, as in
Italy, where the leading 0 is part of the number) and the range of national significant number
lengths. The phone normalisation macro reads this seed; run this script after upgrading
phonenumbers to refresh it:

    .venv/bin/python scripts/build_calling_codes_seed.py > seeds/reference/country_calling_codes.csv
"""

import csv
import sys

import phonenumbers
from phonenumbers import PhoneMetadata


def rows() -> list[tuple[str, int, str, int, int]]:
    out = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        meta = PhoneMetadata.metadata_for_region(region)
        if meta is None or meta.general_desc is None:
            continue
        lengths = [n for n in meta.general_desc.possible_length if n > 0]
        if not lengths:
            continue
        trunk = meta.national_prefix or ""
        # Only plain digit prefixes are usable as a literal trunk prefix.
        if not trunk.isdigit():
            trunk = ""
        out.append((region, meta.country_code, trunk, min(lengths), max(lengths)))
    return out


def main() -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(["country_code", "calling_code", "trunk_prefix", "nsn_min_length", "nsn_max_length"])
    writer.writerows(rows())


if __name__ == "__main__":
    main()
