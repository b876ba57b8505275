"""The settings schema of DESIGN.md §5.2. Every model forbids unknown keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceSettings(_Strict):
    state_dir: Path = Path("var")  # database (SQLite), archive/, quarantine/, reports/
    instance: str = ""  # this daemon's name in shared stores; "" = the host name
    workers: int = Field(2, ge=1, le=64)  # analysis processes
    lease_seconds: float = Field(120.0, gt=0)  # a claimed job returns to the queue after this
    max_attempts: int = Field(3, ge=1)  # then the job is dead and its file quarantined
    rescan_seconds: float = Field(120.0, gt=0)  # periodic rescan of the watch folders
    # a file the reader still calls incomplete after this long is captured as it is
    incomplete_wait_seconds: float = Field(600.0, gt=0)
    reports: bool = True  # render PNG + HTML reports (as low-priority jobs after the analysis)
    tick_seconds: float = Field(1.0, gt=0, le=60)  # the timecourse scheduler's tick


class StoreSettings(_Strict):
    url: str = "sqlite:///var/platewatch.db"


class WatchSettings(_Strict):
    path: Path
    instrument: str
    kind: Literal["auto", "plate", "cytometry"] = "auto"
    layout: Path | None = None
    format: str | None = None  # a reader name instead of sniffing (e.g. "allotropy:VENDOR")
    channels: dict[str, str] = Field(
        default_factory=dict
    )  # cytometry: {annexin = "BL1-A", pi = "BL3-A"}
    stable_seconds: float = Field(2.0, ge=0)
    polling: bool = False
    ignore: list[str] = Field(default_factory=lambda: ["~$*", "*.tmp", "*.part"])


SeverityName = Literal["info", "warning", "critical"]


class AlertTarget(_Strict):
    """An apprise URL with its own minimum severity."""

    url: str
    min_severity: SeverityName | None = None  # None: the [alerts] default


class AlertSettings(_Strict):
    urls: list[str | AlertTarget] = Field(default_factory=list)  # apprise URLs
    min_severity: SeverityName = "warning"
    console: bool = True  # also log every alert on the daemon's console
    jsonl: bool = True  # also append every alert to <state_dir>/alerts.jsonl
    group_after: int = Field(5, ge=2)  # more alerts than this in one pass: one grouped message

    def targets(self) -> list[AlertTarget]:
        return [t if isinstance(t, AlertTarget) else AlertTarget(url=t) for t in self.urls]


class ReaderSettings(_Strict):
    """A reader platewatch drives itself (drivers/): a protocol on a port."""

    name: str = Field(min_length=1, max_length=200)
    protocol: Literal["spectramax", "biotek", "scpi", "simulated"]
    # a device (/dev/ttyUSB0), a pyserial URL (socket://host:4001, rfc2217://…), a VISA
    # resource (ASRL/dev/ttyUSB0::INSTR, TCPIP::10.0.0.5::INSTR), or replay:FILE.json
    port: str = ""
    baudrate: int | None = Field(None, gt=0)  # serial only; the protocol's default when left out
    layout: Path | None = None  # the layout its reads are analysed with (`read --store`)
    probe_seconds: float = Field(10.0, gt=0)  # the daemon asks the reader's status this often
    # protocol options, checked when the reader is opened (drivers/factory.py documents
    # them: timeouts, serial framing, SCPI command map, simulated plate model, record)
    options: dict[str, Any] = Field(default_factory=dict)


class WebSettings(_Strict):
    enabled: bool = True  # the daemon serves the dashboard (platewatch serve runs it alone)
    bind: str = "127.0.0.1:8080"  # any non-loopback address requires a token
    token: str = ""  # or the PLATEWATCH_TOKEN environment variable


class AnalysisSettings(_Strict):
    """How a plate is turned into viability: which reads, which reference table."""

    assay: Literal["mtt", "generic"] = "mtt"  # whose advice the flags give (analysis.advice)
    wavelength_nm: float = Field(570.0, gt=0, le=10000)  # the measurement read; closest is used
    reference_nm: tuple[float, float] = (600.0, 700.0)  # a read in this band is subtracted
    reference_ic50: Path | None = None  # None: the table shipped in config/
    confidence_level: float = Field(0.95, gt=0.5, lt=1.0)

    @field_validator("reference_nm")
    @classmethod
    def _ordered(cls, band: tuple[float, float]) -> tuple[float, float]:
        if not 0 < band[0] <= band[1] <= 10000:
            raise ValueError("reference_nm must be [low, high] in nm, 0 < low <= high")
        return band


class QCSettings(_Strict):
    """Thresholds of the plate checks (SCIENCE.md §3–4). Defaults are judgement calls."""

    # dose response
    response_p: float = Field(0.05, gt=0, lt=1)
    min_effect: float = Field(0.25, ge=0, le=1)
    partial_below: float = Field(0.50, ge=0, le=1)
    # Position effects (analysis.spatial, docs/qc_calibration.md): judged on cell wells
    # against wells that should read alike (one line at one dose; the plateau doses with the
    # untreated wells), fitted within those groups (Huber fit and t). The *_p values
    # are plate-level false-alarm rates: the chance that a clean plate raises the flag.
    edge_ratio: float = Field(0.90, gt=0, le=1)  # ring ratio below this (or above 1/this)
    edge_p: float = Field(0.002, gt=0, lt=1)  # plate-level α of the one ring test
    gradient_p: float = Field(0.010, gt=0, lt=1)  # plate-level α of rows + columns together
    gradient_trend: float = Field(0.08, ge=0)  # end-to-end change below this never warns
    # the end-to-end gradient the split of gradient_p between rows and columns is planned
    # for: the axis the layout measures worse gets more of it (never from the data seen)
    gradient_target: float = Field(0.15, gt=0)
    # kept for old configs: half-plate ratios are reported, no longer tested
    gradient_ratio: float = Field(0.92, gt=0, le=1)
    residual_floor: float = Field(30.0, ge=0)  # % viability below which wells are not judged
    # a dose whose fitted response is within this fraction of the fitted upper plateau is
    # grouped with the untreated wells of its line (the fit says they read alike)
    plateau_tolerance: float = Field(0.02, ge=0, le=0.5)
    # an axis (or the ring) with less than this share of its variation within groups is
    # confounded with the layout (e.g. lines in row blocks): an info note, never a test
    confounded_share: float = Field(0.35, ge=0, le=1)
    # replicates (analysis.qc.replicate_check): group CVs and single outlier wells, against
    # the plate's own noise; replicate_p is the plate-level α of both families together
    replicate_cv: float = Field(0.20, gt=0)
    replicate_min_level: float = Field(0.25, ge=0, le=1)  # of untreated; below: CV not judged
    replicate_p: float = Field(0.004, gt=0, lt=1)
    outlier_fold: float = Field(2.0, gt=1)  # an outlier reads < 1/fold or > fold × its group
    outlier_mad: float = Field(5.0, gt=0)  # kept for old configs; replaced by replicate_p
    # background, signal
    blank_max_od: float = Field(0.15, ge=0)
    blank_fraction_max: float = Field(0.20, ge=0)
    blank_cv_max: float = Field(0.20, ge=0)
    signal_min_ratio: float = Field(3.0, ge=1)  # untreated / blank OD below this: low signal
    signal_min_od: float = Field(0.20, ge=0)  # blank-corrected untreated OD below this
    # Z'
    z_prime_min: float = Field(0.5, le=1)
    # invalid wells: above this fraction of used wells the plate fails
    invalid_fraction_critical: float = Field(0.10, ge=0, le=1)


class CytometrySettings(_Strict):
    """Annexin V/PI gating and QC (analysis/cytometry_model.py CytometryDefaults documents
    each; SCIENCE.md §7). Defaults are judgement calls."""

    min_events: int = Field(2000, ge=1)  # fewer singlets than this: few_events
    saturated_max: float = Field(0.01, ge=0, le=1)  # events at the top of a channel
    time_rate_drop: float = Field(0.25, ge=0, le=1)  # event-rate drop that marks a clog
    time_shift_decades: float = Field(0.1, ge=0)  # scatter shift over time that marks one
    instability_max: float = Field(0.02, ge=0, le=1)  # of events in unstable stretches
    debris_fraction: float = Field(0.25, ge=0, le=1)
    debris_max_fraction: float = Field(0.5, ge=0, le=1)
    singlet_mads: float = Field(4.0, gt=0)  # FSC-A/FSC-H ratio within median ± this many MADs
    control_percentile: float = Field(99.5, gt=50, lt=100)  # threshold from the other stain's tube
    valley_min_fraction: float = Field(0.01, ge=0, le=1)
    valley_max_depth: float = Field(0.8, gt=0, le=1)
    threshold_method: Literal["valley", "control"] = "valley"  # which one samples use
    threshold_margin: float = Field(5.0, ge=0)  # points apart: thresholds_disagree
    viability_control_min: float = Field(70.0, ge=0, le=100)  # % live of the untreated sample
    necrotic_max: float = Field(15.0, ge=0, le=100)
    compensation: Literal["auto", "file", "controls", "none"] = "auto"
    transform: Literal["arcsinh", "logicle"] = "arcsinh"
    arcsinh_cofactor: float = Field(150.0, gt=0)
    # regular expressions (on the file stem, TUBE NAME, $SRC, $FIL) that name the controls
    control_patterns: dict[str, list[str]] | None = None  # None: the built-in patterns
    quiet_seconds: float = Field(
        30.0, ge=0
    )  # an experiment is analysed this long after its last file


class TimecourseSettings(_Strict):
    """Timecourse checks (analysis/timecourse_checks.py TimecourseDefaults documents each)."""

    time_zero_max_h: float = Field(0.5, ge=0)
    growth_window_h: float = Field(20.0, gt=0)
    growth_window_points: int = Field(5, ge=3)
    growth_window_quota: float = Field(0.95, gt=0, le=1)
    growth_max_doubling_h: float = Field(120.0, gt=0)
    stall_window_h: float = Field(12.0, gt=0)
    stall_min_points: int = Field(4, ge=2)
    stall_fraction: float = Field(0.25, ge=0, le=1)
    trend_min_points: int = Field(5, ge=3)
    blank_rise: float = Field(0.02, ge=0)
    blank_p: float = Field(0.001, gt=0, lt=1)
    edge_floor: float = Field(30.0, ge=0)
    edge_drift_ratio: float = Field(0.90, gt=0, le=1)
    edge_drift_change: float = Field(0.05, ge=0)
    edge_drift_p: float = Field(0.001, gt=0, lt=1)
    gr_min_doublings: float = Field(0.5, ge=0)
    doubling_time_h: dict[str, float] = Field(
        default_factory=dict
    )  # known, per cell line (GR without t0)
    curves: bool = True  # an IC50 per read (the slow part of an update)


class Settings(_Strict):
    service: ServiceSettings = ServiceSettings()
    store: StoreSettings = StoreSettings()
    watch: list[WatchSettings] = Field(default_factory=list)
    alerts: AlertSettings = AlertSettings()
    reader: list[ReaderSettings] = Field(default_factory=list)
    web: WebSettings = WebSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    qc: QCSettings = QCSettings()
    cytometry: CytometrySettings = CytometrySettings()
    timecourse: TimecourseSettings = TimecourseSettings()
