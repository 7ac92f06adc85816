"""Elements and compositions: the ground floor every other layer may use.

Importing this package is light (numpy only); pymatgen loads inside the functions that return a
``Composition``, pandas inside :func:`element_table`.
"""

from matforge.chem.batch import CompositionBatch
from matforge.chem.elements import (
    DEFAULT_EXCLUDED,
    ELEMENT_GROUPS,
    MAGPIE_PRESET,
    N_ELEMENTS,
    NOBLE_GASES,
    RADIOACTIVE,
    SYMBOLS,
    Z,
    describe_elements,
    element_set,
    element_table,
    magpie_impute_value,
    magpie_property,
    oxidation_state_lists,
    property_array,
    provenance,
)
from matforge.chem.formula import parse_formula
from matforge.chem.oxidation import charge_balanced, electronegativity_balanced, smact_valid

__all__ = [
    "CompositionBatch",
    "DEFAULT_EXCLUDED",
    "ELEMENT_GROUPS",
    "NOBLE_GASES",
    "RADIOACTIVE",
    "describe_elements",
    "element_set",
    "charge_balanced",
    "electronegativity_balanced",
    "MAGPIE_PRESET",
    "N_ELEMENTS",
    "SYMBOLS",
    "Z",
    "element_table",
    "magpie_impute_value",
    "magpie_property",
    "parse_formula",
    "oxidation_state_lists",
    "property_array",
    "provenance",
    "smact_valid",
]
