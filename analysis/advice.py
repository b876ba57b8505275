"""What to tell a scientist about a flag: the likely cause and what to do, per assay.

A flag's message is "what happened" (written by the check, with its numbers) followed by
the advice of this catalogue for the plate's assay. The checks know nothing about MTT or
asparaginase; only the catalogue does, and a new assay adds its own entries. Placeholders
(``{compound}``, ``{unit}``) are filled from what the check knows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Advice:
    cause: str
    action: str


_GENERIC: dict[str, Advice] = {
    "edge_effect": Advice(
        "Evaporation during the incubation.",
        "Fill the outer wells with buffer or medium and leave them out of the layout, use a "
        "humidified incubator, and let plates sit at room temperature before incubating.",
    ),
    "plate_gradient": Advice(
        "Uneven temperature (stacked plates, a cold shelf or door), cells settling while the "
        "plate was seeded, or a reagent added slowly across the plate.",
        "Seed and add reagents quickly and evenly, and do not stack plates in the incubator.",
    ),
    "edge_effect_untestable": Advice(
        "The layout puts only one kind of well (one cell line, or only the controls) in the "
        "outer ring.",
        "To test for edge effects, give the outer ring the same cell lines and doses as the "
        "interior, or leave it empty (buffer) and out of the layout.",
    ),
    "plate_gradient_untestable": Advice(
        "The layout ties this direction to what the wells hold.",
        "To test it, interleave the cell lines (and place untreated wells at both ends) "
        "along that direction.",
    ),
    "no_dose_response": Advice(
        "Either the line is resistant, or {compound} was inactive.",
        "Compare with the control line on this plate, check the activity of {compound} and "
        "the dilution series, and extend the top dose if needed.",
    ),
    "no_dose_response_resistant": Advice("As expected for a resistant line.", ""),
    "partial_response": Advice(
        "The effect plateaus before half of the signal is lost.",
        "Report the relative IC50 with the maximum effect.",
    ),
    "ic50_extrapolated": Advice(
        "The tested doses do not bracket the IC50.",
        "Shift or widen the dilution series to bracket it.",
    ),
    "control_out_of_range_high": Advice(
        "{compound} may be inactive, or the control cells are not what they should be.",
        "Use a fresh vial / check the activity of {compound}, and check the dilution series "
        "and the control cells' identity and passage.",
    ),
    "control_out_of_range_low": Advice(
        "The doses may be higher than labelled.",
        "Check the stock concentration and the dilution series.",
    ),
    "fit_failed": Advice(
        "The wells of this curve do not allow a dose-response fit.",
        "Check the layout (doses, roles) and the wells' readings.",
    ),
    "replicate_variability": Advice(
        "Likely uneven seeding (cells settle in the reservoir: mix between rows), pipetting "
        "errors or bubbles.",
        "Treat the affected curves with care.",
    ),
    "high_background": Advice(
        "Likely contamination or a degraded detection reagent.",
        "Check the medium for turbidity and use fresh reagent.",
    ),
    "low_signal": Advice(
        "Too few cells were seeded, the cells were unhealthy, or the detection step was too short.",
        "Check the seeding density and the incubation times.",
    ),
    "no_signal": Advice(
        "The reader did not measure this plate (an empty or template export, a lid left on, a "
        "wrong read definition), or nothing in the wells produces signal.",
        "Check the read settings and the plate, and re-read it.",
    ),
    "low_z_prime_outliers": Advice(
        "A few outlier wells spoil an otherwise good window.",
        "See replicate_variability.",
    ),
    "low_z_prime": Advice(
        "The assay window is too narrow or too noisy to separate effects.",
        "Check seeding uniformity and the positive control.",
    ),
    "saturated_wells": Advice(
        "The signal is above the reader's range.",
        "Dilute or read with a lower gain / at a less absorbing wavelength, and re-read; the "
        "saturated wells are excluded, never guessed.",
    ),
    "invalid_wells": Advice(
        "Bubbles, a missed read or a reader error.",
        "They are excluded; re-read the plate if they are controls or many in one curve.",
    ),
    "layout_mismatch": Advice(
        "The layout may be for another plate, rotated, or the read covered part of the plate.",
        "Check the layout against the plate map and the reader's plate definition.",
    ),
    "missing_controls_blank": Advice(
        "Background was not subtracted, so viabilities are slightly compressed towards 100 %.",
        "Include medium-only wells on the next plate.",
    ),
    "missing_controls_untreated": Advice(
        "% viability cannot be computed.",
        'Check the layout (role = "untreated") and the read.',
    ),
    "wavelength_differs": Advice(
        "The export holds no read at the configured wavelength.",
        "Check the reader's protocol, or set [analysis] wavelength_nm for this assay.",
    ),
    # timecourses (analysis/timecourse_checks.py)
    "growth_stalled": Advice(
        "Over-confluence (too many cells seeded for the assay's length), exhausted medium, or "
        "an incubator fault (temperature, CO2); sometimes contamination.",
        "Check the incubator's log and look at the untreated wells under a microscope. Reads "
        "after the stall confound growth arrest with drug effect: judge the IC50 on the reads "
        "before it, or use GR values; next time seed fewer cells or shorten the assay.",
    ),
    "growth_none": Advice(
        "The cells may not have been seeded or are not viable, or the incubator failed.",
        "Check the seeding, the cells' viability and the incubator; the IC50s of this plate "
        "measure no growth inhibition.",
    ),
    "blank_rising": Advice(
        "Contamination, or the detection reagent turning over without cells (light-exposed or "
        "degraded reagent).",
        "Check the blank wells for turbidity and the medium's sterility, and protect the "
        "reagent from light. Blank subtraction follows the rise, but contamination in the cell "
        "wells does not cancel: treat the later reads with care.",
    ),
    "blank_rising_turbid": Advice(
        "Microbial contamination: bacteria or yeast growing in the medium make it turbid at "
        "every wavelength.",
        "Look at the blank wells (cloudy medium, films) and check the medium's and reagents' "
        "sterility. The cell wells are probably contaminated too: repeat the plate.",
    ),
    "edge_drift": Advice(
        "Evaporation from the outer wells builds up over the incubation: low incubator "
        "humidity (an empty water pan), a lid that does not seal, the door opened often, or a "
        "plate at the top or front of a stack.",
        "Check the incubator's humidity and water pan, and seal the plate or use a lid with "
        "condensation rings. The outer wells' later reads are biased low; on the next plate "
        "fill the outer wells with PBS or medium and leave them out of the layout.",
    ),
    "read_missed": Advice(
        "The reader was busy or offline, or platewatch was not running, at the planned time "
        "and through its grace period.",
        "Check the reader's connection and the daemon's log. The timecourse carries on with "
        "the next planned read; a missed time point cannot be taken afterwards.",
    ),
}

_MTT: dict[str, Advice] = {
    "high_background": Advice(
        "Likely contamination or degraded (light-exposed) MTT.",
        "Check the medium for turbidity, use fresh MTT, and protect it from light.",
    ),
    "low_signal": Advice(
        "Too few cells were seeded, the cells were unhealthy, or the MTT incubation was too short.",
        "Check the seeding density and extend the MTT step to 4 h.",
    ),
    "saturated_wells": Advice(
        "The formazan absorbs beyond the reader's range.",
        "Dilute the solubilised formazan or read at a less absorbing wavelength, and re-read; "
        "the saturated wells are excluded, never guessed.",
    ),
    "edge_effect": Advice(
        "Evaporation during the 48–72 h incubation.",
        "Fill the outer wells with PBS or medium and leave them out of the layout, use a "
        "humidified incubator, and let plates sit at room temperature for 30 min before "
        "incubating.",
    ),
    "plate_gradient": Advice(
        "Uneven temperature (stacked plates, a cold incubator shelf or door), cells settling "
        "while the plate was seeded, or MTT/solubiliser added slowly across the plate.",
        "Seed and add reagents quickly and evenly, and do not stack plates in the incubator.",
    ),
    "blank_rising": Advice(
        "MTT is being reduced without cells: contamination, or MTT degraded by light.",
        "Check the blank wells for turbidity and the medium's sterility, and use fresh MTT "
        "protected from light. Blank subtraction follows the rise, but contamination in the "
        "cell wells does not cancel: treat the later reads with care.",
    ),
}

CATALOGUES: dict[str, dict[str, Advice]] = {"generic": _GENERIC, "mtt": _GENERIC | _MTT}


def advice(assay: str, key: str, **fields: str) -> str:
    """The cause and action for ``key`` in ``assay``'s catalogue (generic where it has none)."""
    catalogue = CATALOGUES.get(assay, _GENERIC)
    entry = catalogue.get(key) or _GENERIC.get(key)
    if entry is None:
        return ""
    values = {"compound": "the drug", "unit": ""} | {k: v for k, v in fields.items() if v}
    text = f"{entry.cause} {entry.action}".strip()
    return text.format(**values)


def message(what: str, assay: str, key: str, **fields: str) -> str:
    """'what happened' + the catalogue's cause and action, as one message."""
    what = what.rstrip()
    if not what.endswith((".", ":", "!", "?")):
        what += "."
    extra = advice(assay, key, **fields)
    if extra:
        extra = extra[0].upper() + extra[1:]
    return f"{what} {extra}".strip()
