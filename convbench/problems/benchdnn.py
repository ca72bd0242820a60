"""oneDNN benchdnn's problem descriptors (its conv, deconv and pool drivers) read into convbench
problems, and problems written back as benchdnn repro lines.

benchdnn's grammar (read in oneDNN at commit 3f27bec21fdce6b550f233bf6e0afd086ee8d543:
tests/benchdnn/conv/conv_aux.cpp `str2desc`, deconv/deconv_aux.cpp, pool/pool_aux.cpp,
common.cpp `sanitize_desc`, doc/knobs_desc.md) is a run of ``<key><int>`` entries, ``_`` between
them ignored, then ``n`` and a name to the end (quotes around it are ours to drop):

=============  =================================  =============================================
benchdnn       meaning                            convbench field
=============  =================================  =============================================
g              groups (conv, deconv)              groups (default 1)
mb             batch, default **2**               n (``--mb`` overrides it when not 0)
ic, oc         input, output channels             c, k (pooling has ic only: c)
id, ih, iw     input depth, height, width         size
od, oh, ow     output sizes (stated or derived)   checked against out_size
kd, kh, kw     kernel                             kernel
sd, sh, sw     stride, default **1** (pool too)   stride
pd, ph, pw     padding before                     padding
dd, dh, dw     dilation, **0 = dense**            dilation = benchdnn's + 1
n"name"        a name, not the batch              the case's name
=============  =================================  =============================================

benchdnn's rules, followed here:

- an axis is present when any of its keys is (a stride or padding only when not 1 or 0); a
  depth axis alone is copied to height and width (a cube), a height without a width to the
  width (a square); a width alone is a 1-D problem;
- an output size not stated is derived with the padding (0 when not given):
  O = (I - d'(K-1) - 1 + 2P) / S + 1, d' = d + 1, C's division toward zero; a stated output
  with no padding derives the padding: P = ((O-1)S - I + d'(K-1) + 1) / 2, toward zero;
- the padding after the axis is what the output needs: P_r = (O-1)S - I + d'(K-1) + 1 - P
  (deconv: P_r = (I-1)S - O + d'(K-1) + 1 - P).

A convolution's (or pooling's) output is the same for any P_r from that value up to S - 1
above it, and the same pixels are read: convbench takes the one nearest to P, so a layer padded
alike on both sides in its network (ResNet's 7x7 stem, P 3, P_r 2) stays symmetric; a stated
output that needs P_r < -(S-1), or a negative P, cannot be met (ValueError naming the line).
A deconvolution's negative P_r is its output_padding.

Driver options (`Setting`): ``--dir`` (FWD_B: fwd with bias, the default of conv and deconv;
FWD_D, FWD_I: fwd; BWD_D: bwd_data; BWD_W: bwd_weight; BWD_WB: with the bias; pooling's default
FWD_D), ``--dt``/``--cfg`` (f32, f64), ``--mb``, ``--alg`` of pooling (max; avg_np:
count_include_pad False; avg_p: True), ``--bia-dt`` (a bias), ``--stag`` (conv, deconv) or
``--tag`` (pool): axb/nhwc is channels last. A deconvolution's BWD_D is the forward pass of the
convolution it transposes, its BWD_W that convolution's bwd_weight (without the bias gradient).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace

from convbench.problems.base import Sizes
from convbench.problems.conv import ConvProblem
from convbench.problems.family import Problem
from convbench.problems.pool import PoolProblem
from convbench.problems.transpose import ConvTransposeProblem

ONEDNN_COMMIT = "3f27bec21fdce6b550f233bf6e0afd086ee8d543"
DRIVERS: tuple[str, ...] = ("conv", "deconv", "pool")
# Every benchdnn driver, so that a file's `--ip` is known to be a driver convbench lacks.
ALL_DRIVERS: tuple[str, ...] = DRIVERS + (
    "binary", "bnorm", "brgemm", "concat", "eltwise", "gnorm", "graph", "ip", "lnorm", "lrn",
    "matmul", "prelu", "reduction", "reorder", "resampling", "rnn", "sdpa", "shuffle",
    "softmax", "sum", "zeropad")
DIRS: dict[str, tuple[str, bool]] = {  # benchdnn's --dir: (direction, with a bias)
    "FWD_B": ("fwd", True), "FWD_D": ("fwd", False), "FWD_I": ("fwd", False),
    "BWD_D": ("bwd_data", False), "BWD_W": ("bwd_weight", False),
    "BWD_WB": ("bwd_weight", True), "BWD_DW": ("", False)}
DEFAULT_DIR = {"conv": "FWD_B", "deconv": "FWD_B", "pool": "FWD_D"}
POOL_ALGS: dict[str, tuple[str, bool]] = {  # --alg of pooling: (kind, count_include_pad)
    "max": ("max", True), "pooling_max": ("max", True),
    "avg_np": ("avg", False), "pooling_avg_exclude_padding": ("avg", False),
    "avg_p": ("avg", True), "pooling_avg_include_padding": ("avg", True)}
DTYPES = {"f32": "float32", "f64": "float64"}
CHANNELS_LAST_TAGS = {"axb", "nwc", "nhwc", "ndhwc", "acb", "acdb", "acdeb"}
PLAIN_TAGS = {"any", "abx", "ncw", "nchw", "ncdhw", "abc", "abcd", "abcde"}

_AXES = "dhw"
_SPATIAL = ("i", "o", "k", "s", "p", "d")
_KEYS = {"conv": ("g", "mb", "ic", "oc"), "deconv": ("g", "mb", "ic", "oc"),
         "pool": ("mb", "ic")}


@dataclass(frozen=True)
class Descriptor:
    """One benchdnn descriptor after benchdnn's own rules (defaults, square and cube, derived
    outputs and paddings). Per-axis tuples hold the problem's axes, depth first; `dilation` is
    benchdnn's (0 = dense) and `padding_r` the padding after each axis benchdnn computes."""

    text: str
    driver: str
    name: str | None
    groups: int | None  # None: not given (1)
    mb: int
    ic: int
    oc: int | None  # pooling has none
    size: Sizes
    out: Sizes
    kernel: Sizes
    stride: Sizes
    padding: Sizes
    dilation: Sizes
    padding_r: Sizes

    @property
    def rank(self) -> int:
        return len(self.size)


@dataclass(frozen=True)
class Setting:
    """One benchdnn configuration: one value of each driver option convbench models (None: the
    driver's default direction)."""

    dir: str | None = None
    dt: str = "f32"
    mb: int = 0
    alg: str = "max"
    tag: str = "any"
    bia_dt: str = "undef"


class Unmodelled(ValueError):
    """A setting convbench has no problem for (a data type other than f32 and f64, BWD_DW)."""


def _c_div(a: int, b: int) -> int:
    """C's integer division, toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def _entries(text: str, driver: str) -> tuple[dict[str, int], str | None]:
    """The descriptor's entries (a later one wins, as in benchdnn) and its name."""
    keys = set(_KEYS[driver]) | {p + a for p in _SPATIAL for a in _AXES}
    entry = re.compile(rf"({'|'.join(sorted(keys, key=len, reverse=True))})(-?\d*)")
    values: dict[str, int] = {}
    position = 0
    while position < len(text):
        if text[position] == "_":
            position += 1
            continue
        if text[position] == "n":
            name = text[position + 1:].strip('"')
            return values, name or None
        match = entry.match(text, position)
        if not match:
            raise ValueError(f"unrecognised entry from {text[position:]!r} (known: "
                             f"{', '.join(sorted(keys))}, n\"name\")")
        key, number = match.groups()
        if not number or number == "-":
            raise ValueError(f"no value for {key!r}")
        if int(number) < 0:
            raise ValueError(f"{key!r} must not be negative, got {number}")
        values[key] = int(number)
        position = match.end()
    return values, None


def _present(driver: str, axis: dict[str, int]) -> bool:
    """benchdnn's test for an axis the user gave (pooling's dilation alone does not count)."""
    sizes = axis["i"] | axis["k"] | axis["o"] | (axis["d"] if driver != "pool" else 0)
    return sizes != 0 or axis["s"] != 1 or axis["p"] >= 1


def _derive(driver: str, a: str, axis: dict[str, int]) -> None:
    """Fill in an axis's output or padding as benchdnn does."""
    for key in ("i", "k"):
        if axis[key] <= 0:
            raise ValueError(f"{key}{a} is not given or 0, and the {a} axis is used")
    i, k, s, d = axis["i"], axis["k"], axis["s"], axis["d"]
    extent = (k - 1) * (d + 1) + 1
    deconv = driver == "deconv"
    if not axis["o"]:
        axis["p"] = max(axis["p"], 0)
        p = axis["p"]
        axis["o"] = (i - 1) * s + extent - 2 * p if deconv else _c_div(i - extent + 2 * p, s) + 1
        if axis["o"] <= 0:
            raise ValueError(f"o{a} is not given and the rest make it {axis['o']}")
    elif axis["p"] < 0:
        o = axis["o"]
        axis["p"] = _c_div((i - 1) * s - o + extent if deconv else (o - 1) * s - i + extent, 2)


def _axes(driver: str, values: dict[str, int]) -> dict[str, dict[str, int]]:
    """Per present axis, its six values (i, o, k, s, p, d), with benchdnn's cube and square."""
    axes = {a: {p: values.get(p + a, {"s": 1, "p": -1}.get(p, 0)) for p in _SPATIAL}
            for a in _AXES}
    present = {a for a in _AXES if _present(driver, axes[a])}
    for a in _AXES:
        if a in present:
            _derive(driver, a, axes[a])
    if "d" in present:
        if not present & {"h", "w"}:
            axes["h"], axes["w"] = dict(axes["d"]), dict(axes["d"])
        elif not {"h", "w"} <= present:
            raise ValueError("a 3-D problem needs both h and w values or neither")
        return axes
    if "h" in present:
        if "w" not in present:
            axes["w"] = dict(axes["h"])
        return {a: axes[a] for a in "hw"}
    if "w" in present:
        return {"w": axes["w"]}
    raise ValueError("no spatial axis: give at least iw (1-D), ih (2-D) or id (3-D)")


def parse_descriptor(text: str, driver: str = "conv") -> Descriptor:
    """Read one descriptor by benchdnn's rules for `driver`; ValueError naming the descriptor
    when benchdnn would refuse it too."""
    if driver not in DRIVERS:
        raise ValueError(f"benchdnn driver {driver!r} is not one convbench reads "
                         f"({', '.join(DRIVERS)})")
    try:
        return _descriptor(text.strip(), driver)
    except ValueError as error:
        raise ValueError(f"benchdnn {driver} descriptor {text.strip()!r}: {error}") from None


def _descriptor(text: str, driver: str) -> Descriptor:
    values, name = _entries(text, driver)
    for key in ("g", "sd", "sh", "sw"):
        if values.get(key, 1) == 0:
            raise ValueError(f"{key} must be positive")
    if not values.get("ic"):
        raise ValueError("ic is not given or 0")
    if driver != "pool" and not values.get("oc"):
        raise ValueError("oc is not given or 0" + (" (a pooling descriptor? read it with the "
                                                    "pool driver: --pool)" if driver == "conv"
                                                    else ""))
    axes = _axes(driver, values)

    def column(key: str) -> Sizes:
        return tuple(axis[key] for axis in axes.values())

    right = tuple(_right_padding(driver, ax) for ax in axes.values())
    return Descriptor(text=text, driver=driver, name=name, groups=values.get("g"),
                      mb=values.get("mb", 2), ic=values["ic"], oc=values.get("oc"),
                      size=column("i"), out=column("o"), kernel=column("k"),
                      stride=column("s"), padding=column("p"), dilation=column("d"),
                      padding_r=right)


def _right_padding(driver: str, axis: dict[str, int]) -> int:
    """benchdnn's `opp_pad`: the padding after the axis that its output size needs."""
    i, o, k, s, p, d = (axis[key] for key in _SPATIAL)
    extent = (k - 1) * (d + 1) + 1
    if driver == "deconv":
        return (i - 1) * s - o + extent - p
    return (o - 1) * s - i + extent - p


def _padding_after(padding: int, needed: int, stride: int) -> int:
    """The padding after an axis for convbench: from `needed` (benchdnn's) to S-1 above it the
    output and the pixels read are the same; the value nearest the padding before."""
    if needed + stride - 1 < 0:
        raise ValueError(f"the stated output needs {-needed} input pixels cut off the end of "
                         f"an axis (padding after {needed}); convbench pads, it does not crop")
    return min(max(padding, needed, 0), needed + stride - 1)


def to_problem(desc: Descriptor, setting: Setting = Setting()) -> Problem:
    """The convbench problem of a descriptor under one setting; ValueError naming the
    descriptor when its stated output cannot be met, Unmodelled for a setting convbench lacks."""
    try:
        problem = _problem(desc, setting)
    except Unmodelled as error:
        raise Unmodelled(f"benchdnn {desc.driver} descriptor {desc.text!r}: {error}") from None
    except ValueError as error:
        raise ValueError(f"benchdnn {desc.driver} descriptor {desc.text!r}: {error}") from None
    return problem


def unmodelled(driver: str, setting: Setting) -> str | None:
    """Why convbench has no problem for this setting (a data type other than f32 and f64,
    BWD_DW, a pooling's BWD_W), or None."""
    try:
        _direction(driver, setting)
        _dtype(setting.dt)
    except Unmodelled as error:
        return str(error)
    return None


def _dtype(dt: str) -> str:
    """--dt's value (one data type for every tensor, or src:wei:dst alike) as a convbench dtype."""
    kinds = set(dt.split(":"))
    if len(kinds) != 1 or next(iter(kinds)) not in DTYPES:
        raise Unmodelled(f"--dt={dt}: convbench computes in f32 or f64 throughout")
    return DTYPES[kinds.pop()]


def _layout(tag: str) -> str:
    return "nhwc" if tag.lower() in CHANNELS_LAST_TAGS else "nchw"


def _direction(driver: str, setting: Setting) -> tuple[str, bool]:
    name = (setting.dir or DEFAULT_DIR[driver]).upper()
    if name not in DIRS or not DIRS[name][0]:
        raise Unmodelled(f"--dir={name}: convbench has FWD_B, FWD_D, FWD_I, BWD_D, BWD_W, "
                         "BWD_WB")
    direction, bias = DIRS[name]
    if driver == "pool":
        if direction == "bwd_weight":
            raise Unmodelled(f"--dir={name}: pooling has no weights")
        return direction, False
    return direction, bias or (direction != "bwd_data" and setting.bia_dt != "undef")


def _problem(desc: Descriptor, setting: Setting) -> Problem:
    direction, bias = _direction(desc.driver, setting)
    common = dict(size=desc.size, kernel=desc.kernel, stride=desc.stride, padding=desc.padding,
                  dilation=tuple(d + 1 for d in desc.dilation), dtype=_dtype(setting.dt),
                  layout=_layout(setting.tag))
    n = setting.mb or desc.mb
    if desc.driver == "deconv":
        return _deconv(desc, n, direction, bias, common)
    after = tuple(_padding_after(p, r, s) for p, r, s in zip(
        desc.padding, desc.padding_r, desc.stride, strict=True))
    problem: Problem
    if desc.driver == "pool":
        if setting.alg.lower() not in POOL_ALGS:
            raise ValueError(f"--alg={setting.alg}: pooling's are {', '.join(POOL_ALGS)}")
        kind, include = POOL_ALGS[setting.alg.lower()]
        problem = PoolProblem(kind, n, desc.ic, padding_end=after, count_include_pad=include,
                              direction=direction, **common)
    else:
        problem = ConvProblem(n, desc.ic, k=desc.oc, padding_end=after,
                              groups=desc.groups or 1, bias=bias, direction=direction, **common)
    _check_out(desc, problem.out_size)
    return problem


def _deconv(desc: Descriptor, n: int, direction: str, bias: bool, common: dict) -> Problem:
    """A transposed convolution; a negative padding after is output_padding. Its backward
    directions are passes of the convolution it transposes."""
    after = tuple(max(r, 0) for r in desc.padding_r)
    extra = tuple(max(-r, 0) for r in desc.padding_r)
    problem = ConvTransposeProblem(n, desc.ic, k=desc.oc, padding_end=after,
                                   output_padding=extra, groups=desc.groups or 1,
                                   bias=bias and direction == "fwd", **common)
    _check_out(desc, problem.out_size)
    if direction == "fwd":
        return problem
    return replace(problem.adjoint, direction="fwd" if direction == "bwd_data" else direction)


def _check_out(desc: Descriptor, out: Sizes) -> None:
    if out != desc.out:
        raise ValueError(f"the stated output {_sizes(desc.out)} cannot be met: convbench's "
                         f"problem gives {_sizes(out)}")


def _sizes(sizes: Sizes) -> str:
    return "x".join(map(str, sizes))


# --- options ------------------------------------------------------------------------------

# benchdnn's global options: --reset leaves them be.
COMMON_OPTIONS = frozenset({
    "allow-enum-tags-only", "attr-same-pd-check", "canonical", "check-ref-impl", "cold-cache",
    "cpu-isa-hints", "engine", "fast-ref", "fix-times-per-prb", "global-impl",
    "global-skip-impl", "max-ms-per-prb", "num-streams", "repeats-per-prb", "mem-check",
    "memory-kind", "mode", "mode-modifier", "start", "stream-kind", "summary", "verbose",
    "execution-mode", "buffer-prefix"})
_MODELLED = ("dir", "dt", "cfg", "mb", "alg", "bia-dt", "match")  # and the source's tag


@dataclass(frozen=True)
class Options:
    """The driver options in force while benchdnn reads: each option convbench models with its
    values (benchdnn runs a descriptor in every combination), and the options it does not
    model, as written (`ignored`, cleared by --reset; `common`, benchdnn's global ones)."""

    driver: str = "conv"
    dir: tuple[str | None, ...] = (None,)
    dt: tuple[str, ...] = ("f32",)
    mb: tuple[int, ...] = (0,)
    alg: tuple[str, ...] = ("max",)
    tag: tuple[str, ...] = ("any",)
    bia_dt: tuple[str, ...] = ("undef",)
    match: str | None = None  # --match: only problems whose repro line this regex finds
    ignored: tuple[str, ...] = ()
    common: tuple[str, ...] = ()

    def reset(self) -> Options:
        """--reset: the driver's defaults, benchdnn's global options kept."""
        return Options(driver=self.driver, common=self.common)

    def with_option(self, token: str) -> Options:
        """The options after one `--name=value` token (or `-v2`); ValueError for a value benchdnn
        would refuse."""
        name, _, value = token.lstrip("-").partition("=")
        name = _option_name(token)
        options = self
        if name == ("tag" if self.driver == "pool" else "stag"):
            tags = [t for t in value.split(",") if t]
            plain = [t for t in tags if t.lower() in CHANNELS_LAST_TAGS | PLAIN_TAGS]
            layouts = {_layout(t): t for t in reversed(plain)}  # one tag per layout, the first
            options = replace(self, tag=tuple(t for t in plain if t in layouts.values())
                              or ("any",))
            blocked = [t for t in tags if t not in plain]  # blocked formats: not modelled
            token = f"--{name}={','.join(blocked)}" if blocked else f"--{name}="
            value = ",".join(blocked)
        elif name == "dtag" and value.lower() in CHANNELS_LAST_TAGS | PLAIN_TAGS:
            return self  # convbench's layout is the input's and the output's alike: --stag's
        elif name in _MODELLED and (name != "alg" or self.driver == "pool"):
            return self._modelled(name, value)
        field = "common" if name in COMMON_OPTIONS else "ignored"
        kept = tuple(t for t in getattr(options, field) if _option_name(t) != name)
        dropped = "=" in token and value.lower() in ("", "any")  # benchdnn's defaults
        return replace(options, **{field: kept + (() if dropped else (token,))})

    def matches(self, problem: Problem, name: str | None) -> bool:
        """--match: whether the regex finds the problem's repro line (benchdnn searches the
        line it would print, options and descriptor)."""
        return self.match is None or re.search(self.match, repro_line(problem, name)) is not None

    def _modelled(self, name: str, value: str) -> Options:
        if name == "match":
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"--match={value}: not a regular expression: {error}") from None
            return replace(self, match=value or None)
        items = [v for v in value.split(",") if v] or [""]
        if name == "dir":
            unknown = [v for v in items if v.upper() not in DIRS]
            if unknown:
                raise ValueError(f"--dir={value}: unknown direction {unknown[0]!r} (benchdnn's: "
                                 f"{', '.join(DIRS)})")
            return replace(self, dir=tuple(v.upper() for v in items))
        if name in ("dt", "cfg"):
            return replace(self, dt=tuple(items))
        if name == "mb":
            if not all(v.isdigit() for v in items):
                raise ValueError(f"--mb={value}: expected non-negative ints")
            return replace(self, mb=tuple(int(v) for v in items))
        if name == "alg":
            unknown = [v for v in items if v.lower() not in POOL_ALGS]
            if unknown:
                raise ValueError(f"--alg={value}: unknown pooling algorithm {unknown[0]!r}")
            return replace(self, alg=tuple(items))
        return replace(self, bia_dt=tuple(items))

    def settings(self) -> list[tuple[tuple[str, ...], Setting]]:
        """Every combination of the modelled options, each with the labels that tell it from
        the others (none when there is one)."""
        columns = [("dir", self.dir, _dir_labels(self.driver, self.dir)),
                   ("dt", self.dt, [v.split(":")[0] for v in self.dt]),
                   ("mb", self.mb, [f"mb{v}" for v in self.mb]),
                   ("alg", self.alg if self.driver == "pool" else ("max",), [*self.alg]),
                   ("tag", self.tag, [_layout(t) for t in self.tag]),
                   ("bia_dt", self.bia_dt, [f"bia_{v}" for v in self.bia_dt])]
        found = []
        for picks in itertools.product(*(range(len(values)) for _, values, _ in columns)):
            setting = Setting(**{field: values[i] for (field, values, _), i in
                                 zip(columns, picks, strict=True)})
            labels = tuple(names[i] for (_, values, names), i in zip(columns, picks, strict=True)
                           if len(values) > 1)
            found.append((labels, setting))
        return found


def _option_name(token: str) -> str:
    name = token.lstrip("-").partition("=")[0].replace("_", "-")
    return "verbose" if name.startswith("v") and not token.startswith("--") else name


def _dir_labels(driver: str, dirs: tuple[str | None, ...]) -> list[str]:
    """convbench's direction names (fwd, bwd_data, bwd_weight), or benchdnn's own lowered when
    two of them share one (FWD_B and FWD_D)."""
    names = [DIRS.get((d or DEFAULT_DIR[driver]), (d or "", False))[0] for d in dirs]
    if len(set(names)) == len(names) and all(names):
        return names
    return [(d or DEFAULT_DIR[driver]).lower() for d in dirs]


def is_benchdnn(text: str) -> bool:
    """Whether `text` is in benchdnn's syntax (an `ic` entry, or options first) rather than
    convbench's own descriptor grammar, which has no `ic`."""
    text = text.strip()
    return text.startswith("-") or re.search(r"(^|[\d_])ic\d", text) is not None


@dataclass(frozen=True)
class Line:
    """A repro line read back: its problems (one per setting of the options given), its name."""

    problems: tuple[Problem, ...]
    name: str | None
    options: Options


def parse_repro(text: str, driver: str = "conv") -> Line:
    """A benchdnn command line's options and its one descriptor (``--conv --dir=BWD_D
    mb8ic64ih56oc64oh56kh3ph1n"x"``, or a bare descriptor) read as convbench problems."""
    options = Options(driver=driver)
    descriptors = []
    for token in text.split():
        if token.startswith("--") and token[2:] in ALL_DRIVERS:
            if token[2:] not in DRIVERS:
                raise ValueError(f"benchdnn driver {token!r}: convbench reads "
                                 f"{', '.join(DRIVERS)}")
            options = Options(driver=token[2:], common=options.common)
        elif token == "--reset":
            options = options.reset()
        elif token.startswith("-"):
            options = options.with_option(token)
        else:
            descriptors.append(token)
    if len(descriptors) != 1:
        raise ValueError(f"{text.strip()!r}: expected one benchdnn descriptor, found "
                         f"{len(descriptors)}")
    desc = parse_descriptor(descriptors[0], options.driver)
    problems = tuple(to_problem(desc, setting) for _, setting in options.settings())
    return Line(problems, desc.name, options)


# --- repro lines ----------------------------------------------------------------------------

def repro_line(problem: Problem, name: str | None = None) -> str:
    """`problem` in benchdnn's syntax, as benchdnn prints a repro line: the driver, the options
    that differ from its defaults, the descriptor (`ih` only where `iw` is the same, etc.) and
    the name. The output sizes are written, so benchdnn derives the padding after."""
    driver, options = _repro_options(problem)
    text = " ".join([f"--{driver}", *options, _repro_descriptor(problem, driver)])
    return text + (f'n"{name}"' if name else "")


def _repro_options(p: Problem) -> tuple[str, list[str]]:
    options = []
    if isinstance(p, PoolProblem):
        driver = "pool"
        if p.divisor_override is not None:
            raise ValueError(f"{p}: benchdnn's pooling has no divisor_override")
        if p.direction != "fwd":
            options.append("--dir=BWD_D")
        if p.kind == "avg":
            options.append(f"--alg={'avg_p' if p.count_include_pad else 'avg_np'}")
    elif isinstance(p, ConvTransposeProblem):
        driver = "deconv"
        if not p.bias:
            options.append("--dir=FWD_D")
    else:
        driver = "conv"
        dirs = {"fwd": ("FWD_B", "FWD_D"), "bwd_data": ("BWD_D", "BWD_D"),
                "bwd_weight": ("BWD_WB", "BWD_W")}[p.direction]
        if dirs[0 if p.bias else 1] != "FWD_B":
            options.append(f"--dir={dirs[0 if p.bias else 1]}")
    if p.dtype != "float32":
        options.append("--dt=f64")
    if p.layout == "nhwc":
        options += ["--tag=axb"] if driver == "pool" else ["--stag=axb", "--dtag=axb"]
    return driver, options


def _repro_descriptor(p: Problem, driver: str) -> str:
    """benchdnn's descriptor of `p`, printed the way its operator<< prints one."""
    rank = p.rank
    axes = _AXES[3 - rank:]
    columns = {"i": p.size, "o": p.out_size, "k": p.kernel, "s": p.stride, "p": p.padding,
               "d": tuple(d - 1 for d in p.dilation)}
    rows = list(zip(*columns.values(), strict=True))  # one (i, o, k, s, p, d) per axis
    shown = _shown_axes(rank, rows, axes)

    def spatial(key: str) -> str:
        return "".join(f"{key}{a}{v}" for a, v in zip(axes, columns[key], strict=True)
                       if a in shown)

    parts = []
    groups = getattr(p, "groups", 1)
    if groups != 1:
        parts.append(f"g{groups}")
    if p.n != 2:
        parts.append(f"mb{p.n}")
    parts += [f"ic{p.c}", spatial("i")]
    if driver != "pool":
        parts.append(f"oc{p.k}")  # type: ignore[union-attr]
    parts += [spatial("o"), spatial("k")]
    if any(s != 1 for s in p.stride):
        parts.append(spatial("s"))
    parts.append(spatial("p"))
    if any(d != 1 for d in p.dilation):
        parts.append(spatial("d"))
    return "".join(parts)


def _shown_axes(rank: int, rows: list[tuple[int, ...]], axes: str) -> str:
    """benchdnn's print_dhw: the depth always in 3-D, height and width only when the problem is
    not a cube; in 2-D the width only when it is not a square."""
    if rank == 1:
        return "w"
    if rank == 2:
        return "h" if rows[0] == rows[1] else "hw"
    return "d" if rows[0] == rows[1] == rows[2] else "dhw"


__all__ = ["ALL_DRIVERS", "DRIVERS", "Descriptor", "Line", "ONEDNN_COMMIT", "Options",
           "Setting", "Unmodelled", "is_benchdnn", "parse_descriptor", "parse_repro",
           "repro_line", "to_problem", "unmodelled"]
