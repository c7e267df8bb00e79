"""The JEPA world model: encoder, action-conditioned predictor, readout probe.

- ``Encoder``: normalised observation → latent ``z`` (an MLP plus a linear map). The
  observation normalisation is *not* part of the graph: the engine applies the
  manifest's ``normalisation`` table before ``encode`` (docs/bundle.md).
- ``PixelEncoder``: a camera image (raw 0..255 values, scaled inside the
  graph) and the normalised proprio entries → ``z``: a small strided CNN with
  spatial soft-argmax keypoints beside an ``Encoder`` over the proprio entries.
- ``Predictor``: ``z' = z + f([z, (u − m) / h])``, an MLP on the latent and
  the action scaled by the middle ``m`` and half range ``h`` of the action
  bounds (the scaling is inside the graph: ``predict`` takes raw actions).
- ``Readout``: ``y = μ_y + σ_y ⊙ g(z)``, the probe heads (an MLP plus a linear
  probe); ``g`` is trained on
  standardised readouts, the de-standardisation is inside the graph so that
  ``readout`` returns physical units.

The loss (see ``jepa_loss``) follows JEPA world models (DINO-WM, V-JEPA 2-AC):
multi-step latent prediction against a stop-gradient (EMA) target encoder,
a VICReg variance/covariance regulariser against collapse (Bardes et al.,
2022), and the readout probes trained jointly on encoded and predicted latents.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def mlp(inp: int, hidden: int, out: int, layers: int) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with SiLU, then a linear layer
    (``layers = 0``: a single linear map)."""
    mods: list[nn.Module] = []
    width = inp
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.SiLU()]
        width = hidden
    mods.append(nn.Linear(width, out))
    return nn.Sequential(*mods)


def parse_frame(spec: str, observations: list[str]) -> tuple[list[int], list[tuple[int, int]]]:
    """Parses a frame feature ``"OX,OY,COS,SIN:X,Y[:X,Y...]"`` (points seen from
    a moving frame) or ``"COS,SIN:X,Y[:X,Y...]"`` (vectors turned into it)
    into observation indices ``(frame, [(x, y), ...])``."""
    parts = [p.strip() for p in spec.split(":")]
    if len(parts) < 2:
        raise ValueError(f"frame {spec!r}: expected FRAME:X,Y (FRAME = OX,OY,COS,SIN or COS,SIN)")

    def cols(text: str) -> list[int]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in observations]
        if unknown:
            raise ValueError(f"frame {spec!r}: {unknown} are not observations (they are {observations})")
        return [observations.index(n) for n in names]

    frame = cols(parts[0])
    if len(frame) not in (2, 4):
        raise ValueError(f"frame {spec!r}: the frame is OX,OY,COS,SIN (points) or COS,SIN (vectors)")
    pairs = []
    for part in parts[1:]:
        xy = cols(part)
        if len(xy) != 2:
            raise ValueError(f"frame {spec!r}: {part!r} is not an X,Y pair")
        pairs.append((xy[0], xy[1]))
    return frame, pairs


class FrameFeatures(nn.Module):
    """Planar points and vectors expressed in frames that move with the
    observation (e.g. the pusher seen from the box), appended to the
    encoder's input. The graph undoes the observation normalisation, turns
    each pair into its frame and standardises the result with ``scale``."""

    def __init__(self, frames, mean, std):
        super().__init__()
        self.frames = [(list(f), list(p)) for f, p in frames]
        self.size = 2 * sum(len(p) for _, p in self.frames)
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("scale", torch.ones(1, self.size))

    def raw(self, obs: torch.Tensor) -> torch.Tensor:
        """The features before standardisation, from normalised observations ``[B, O]``."""
        x = obs * self.std + self.mean
        out = []
        for frame, pairs in self.frames:
            c, s = x[:, frame[-2]], x[:, frame[-1]]
            for i, j in pairs:
                dx, dy = x[:, i], x[:, j]
                if len(frame) == 4:
                    dx, dy = dx - x[:, frame[0]], dy - x[:, frame[1]]
                out += [c * dx + s * dy, c * dy - s * dx]
        return torch.stack(out, dim=1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.raw(obs) / self.scale


class Encoder(nn.Module):
    """Normalised observation ``[B, O]`` → latent ``[B, D]``.

    ``periodic`` lists observation columns that are angles (e.g. an unwrapped
    heading): the graph undoes their normalisation (``mean``/``std`` of those
    columns) and feeds the network ``cos`` and ``sin`` of them instead, so the
    latent does not depend on how many turns the angle has wound up.
    """

    def __init__(self, obs_dim: int, latent_dim: int, hidden: int, layers: int,
                 periodic=(), periodic_mean=(), periodic_std=(), frames=None):
        super().__init__()
        self.frames = frames
        extra = frames.size if frames is not None else 0
        periodic = [int(i) for i in periodic]
        self.has_periodic = bool(periodic)
        if self.has_periodic:
            keep = [i for i in range(obs_dim + extra) if i not in periodic]
            self.register_buffer("keep_idx", torch.as_tensor(keep, dtype=torch.long))
            self.register_buffer("per_idx", torch.as_tensor(periodic, dtype=torch.long))
            self.register_buffer("per_mean", torch.as_tensor(periodic_mean, dtype=torch.float32).reshape(1, -1))
            self.register_buffer("per_std", torch.as_tensor(periodic_std, dtype=torch.float32).reshape(1, -1))
        self.net = mlp(obs_dim + len(periodic) + extra, hidden, latent_dim, layers)
        # A linear path beside the MLP: what is observed stays linearly
        # recoverable from the latent, so probes read it back precisely.
        self.skip = nn.Linear(obs_dim + len(periodic) + extra, latent_dim, bias=False)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        if self.frames is not None:
            obs = torch.cat([obs, self.frames(obs)], dim=1)
        if self.has_periodic:
            angle = obs.index_select(1, self.per_idx) * self.per_std + self.per_mean
            obs = torch.cat([obs.index_select(1, self.keep_idx), torch.cos(angle), torch.sin(angle)], dim=1)
        return self.net(obs) + self.skip(obs)


def spatial_soft_argmax(maps: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Expected image coordinates of each channel's softmax over its pixels
    (Levine et al., 2016): ``[B, C, H, W]`` → ``[B, 2C]`` (all x, then all y),
    with ``xs`` ``[1, 1, 1, W]`` and ``ys`` ``[1, 1, H, 1]`` the pixel
    coordinates. Positions read from keypoints are sub-pixel precise."""
    b, c, h, w = maps.shape
    soft = torch.softmax(maps.reshape(b, c, h * w), dim=2).reshape(b, c, h, w)
    return torch.cat([(soft * xs).sum(dim=(2, 3)), (soft * ys).sum(dim=(2, 3))], dim=1)


class GroundToImage(nn.Module):
    """Where on the image a point of the ground is, for a point given
    relative to the robot: the robot's position is two proprio entries
    (``columns``, normalised with ``mean`` and ``std``, e.g. odometry ``x``,
    ``y``), and ``view`` is the camera's ground rectangle ``(center,
    half_extents)`` (meta.json ``image.view``). World ``[x, y]`` is at the
    normalised image coordinates ``u = 2s(x − cx)/W``, ``v = −2s(y − cy)/H``
    with ``s`` the camera's pixels per metre (``grid_sample``'s convention,
    ``align_corners=False``)."""

    def __init__(self, image_shape, view, columns, mean, std):
        super().__init__()
        _, h, w = image_shape
        (cx, cy), (hx, hy) = view
        s = min(w / (2.0 * hx), h / (2.0 * hy))
        self.columns = [int(c) for c in columns]
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32).reshape(1, 2))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).reshape(1, 2))
        self.register_buffer("gain", torch.tensor([[2.0 * s / w, -2.0 * s / h]], dtype=torch.float32))
        self.register_buffer("origin", torch.tensor([[cx, cy]], dtype=torch.float32))

    def forward(self, proprio: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Normalised ``proprio`` ``[B, P]`` and ground offsets from the robot
        ``[1, h, w, 2]`` (metres, ``dx``, ``dy``) → the sampling grid
        ``[B, h, w, 2]`` of those points."""
        xy = proprio[:, self.columns] * self.std + self.mean
        return (xy.reshape(-1, 1, 1, 2) + offsets - self.origin.reshape(1, 1, 1, 2)) * self.gain.reshape(1, 1, 1, 2)


class EgoCrop(nn.Module):
    """The square of the image around the robot: ``size``×``size`` pixels
    bilinearly sampled from the ground square ``position ± half`` metres
    (world-aligned, +y up), where ``position`` is the robot's own estimate of
    where it is (two proprio entries, e.g. odometry ``x``, ``y``). A
    convolution over the crop learns what is near the robot the same way
    wherever it is (a clearance to the nearest obstacle), where one over
    the whole frame sees each arena layout once per episode.

    ``view``, ``columns``, ``mean``, ``std``: as for ``GroundToImage``.
    Outside the image the crop is black (0).
    """

    def __init__(self, image_shape, view, columns, mean, std, half: float, size: int):
        super().__init__()
        self.at = GroundToImage(image_shape, view, columns, mean, std)
        offsets = torch.linspace(-half, half, size)
        # Grid [size, size, 2] of (dx, dy): columns left to right, rows top (+y) to bottom.
        grid = torch.stack([offsets.reshape(1, -1).expand(size, size),
                            offsets.flip(0).reshape(-1, 1).expand(size, size)], dim=-1)
        self.register_buffer("grid", grid.unsqueeze(0))

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """``image`` ``[B, C, H, W]`` (any scale), normalised ``proprio``
        ``[B, P]`` → the crop ``[B, C, size, size]``."""
        return nn.functional.grid_sample(image, self.at(proprio, self.grid), mode="bilinear", padding_mode="zeros",
                                         align_corners=False)


class GroundField(nn.Module):
    """A readout mapped over the ground, read where the robot is: a small
    convolutional head turns the encoder's feature map into one channel,
    the readout's (standardised) value at each place of the ground in view,
    and bilinear sampling reads it at the robot's own position (two proprio
    entries, e.g. odometry ``x``, ``y``) and at the 8 neighbours ``step``
    metres away, which tell which way the value changes as the robot moves.
    The position may also be one the image showed (the box's, estimated by
    the ``PixelEncoder``'s seen head): e.g. a box's clearance to a keep-out
    region, read where the box is.

    The centre sample is supervised against the readout where the robot is
    (``jepa_loss``, term ``seen``); wherever the robot has been, the head
    learns the same rule, so the map holds the readout everywhere in view. A
    distance to the nearest keep-out region is local (translation-equivariant
    in the image), which a feature pooled over the whole frame is not: the
    pooled encoder read the push scene's ``keepout.clearance`` to 29 mm RMSE
    only (models/README.md). ``view``, ``columns``, ``mean``, ``std``: as
    for ``GroundToImage``.
    """

    SAMPLES = 9

    def __init__(self, image_shape, view, columns, mean, std, step: float, features: int):
        super().__init__()
        self.at = GroundToImage(image_shape, view, columns, mean, std)
        self.head = nn.Sequential(nn.Conv2d(features, 32, 3, 1, 1), nn.SiLU(), nn.Conv2d(32, 1, 1))
        # The centre first, then its 8 neighbours: [1, 1, 9, 2] offsets (dx, dy).
        offsets = [(0.0, 0.0)] + [(i * step, j * step) for j in (1, 0, -1) for i in (-1, 0, 1) if (i, j) != (0, 0)]
        self.register_buffer("offsets", torch.tensor(offsets, dtype=torch.float32).reshape(1, 1, self.SAMPLES, 2))

    def forward(self, maps: torch.Tensor, at: torch.Tensor) -> torch.Tensor:
        """Feature ``maps`` ``[B, F, h, w]`` over the whole image and the rows
        ``at`` ``[B, P]`` that hold the position (normalised proprio entries,
        or the standardised estimates of a position the image showed: see
        ``PixelEncoder``) → the 9 samples ``[B, 9]``, the centre first."""
        field = self.head(maps)
        return nn.functional.grid_sample(field, self.at(at, self.offsets), mode="bilinear", padding_mode="border",
                                         align_corners=False).reshape(-1, self.SAMPLES)


class GroundMap(nn.Module):
    """A readout mapped over the ground around the robot and carried in the
    latent: a convolution head at the image's full resolution turns the
    camera image into one channel (the readout, standardised, at each
    place in view), sampled on a ``cells`` × ``cells`` grid spanning ``±half``
    metres around the robot's position when the image was taken (two
    proprio entries). The grid and that position (standardised as the
    readouts ``pos`` of the robot's position are) are the latent's static
    part: the predictor carries them unchanged, and the ``Readout`` reads
    the mapped readout by sampling the grid where the predictor imagines
    the robot (``MapReadout``). A clearance to obstacles the robot only saw
    is then as precise along an imagined trajectory as the map and the
    imagined position, and the predictor never learns the map.

    ``view``, ``columns``, ``mean``, ``std``: as for ``GroundToImage``;
    ``pos_mean``, ``pos_std``: the readout statistics of the robot's position.
    """

    def __init__(self, image_shape, view, columns, mean, std, half: float, cells: int, pos_mean, pos_std,
                 channels: int = 16):
        super().__init__()
        c = int(image_shape[0])
        self.at = GroundToImage(image_shape, view, columns, mean, std)
        self.head = nn.Sequential(
            nn.Conv2d(c, channels, 5, 1, 2), nn.SiLU(),
            nn.Conv2d(channels, channels, 5, 1, 4, dilation=2), nn.SiLU(),
            # Seen 10 pixels each way (1.25 m on the 8 m navigate arena): the
            # clearance saturates at 0.6 m plus the robot's 0.2 m radius.
            nn.Conv2d(channels, channels, 3, 1, 4, dilation=4), nn.SiLU(),
            nn.Conv2d(channels, 1, 1))
        self.cells, self.half = int(cells), float(half)
        offsets = torch.linspace(-self.half, self.half, self.cells)
        # Rows top (+y) to bottom, columns left to right: [1, cells, cells, 2].
        grid = torch.stack([offsets.reshape(1, -1).expand(self.cells, self.cells),
                            offsets.flip(0).reshape(-1, 1).expand(self.cells, self.cells)], dim=-1)
        self.register_buffer("grid", grid.unsqueeze(0))
        self.register_buffer("pos_mean", torch.as_tensor(pos_mean, dtype=torch.float32).reshape(1, 2))
        self.register_buffer("pos_std", torch.as_tensor(pos_std, dtype=torch.float32).reshape(1, 2))
        self.width = self.cells * self.cells + 2

    def forward(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        """``image`` ``[B, C, H, W]`` (scaled to 0..1, centred) and the
        normalised ``proprio`` ``[B, P]`` → ``[B, cells² + 2]``: the grid, then
        the robot's position standardised as its readouts."""
        field = self.head(image)
        grid = nn.functional.grid_sample(field, self.at(proprio, self.grid), mode="bilinear",
                                         padding_mode="border", align_corners=False)
        xy = proprio[:, self.at.columns] * self.at.std + self.at.mean
        return torch.cat([grid.flatten(1), (xy - self.pos_mean) / self.pos_std], dim=1)


class MapReadout(nn.Module):
    """Reads the mapped readout (column ``col``) off a latent's static grid
    at the robot's position (columns ``pos``, the latent's tracked entries),
    relative to the position the grid was taken at; in standardised units."""

    def __init__(self, col: int, pos, cells: int, half: float, pos_std, readouts: int):
        super().__init__()
        self.col, self.pos, self.cells, self.half = int(col), [int(p) for p in pos], int(cells), float(half)
        self.register_buffer("pos_std", torch.as_tensor(pos_std, dtype=torch.float32).reshape(1, 2))
        # The readout puts the latent's tracked position (its first two
        # entries) in the columns ``pos``: ``y·keep + d[:, :2] @ place``.
        keep = torch.ones(1, readouts)
        place = torch.zeros(2, readouts)
        for i, c in enumerate(self.pos):
            keep[0, c] = 0.0
            place[i, c] = 1.0
        self.register_buffer("keep", keep)
        self.register_buffer("place", place)

    def forward(self, y_n: torch.Tensor, static: torch.Tensor) -> torch.Tensor:
        n = self.cells * self.cells
        grid, anchor = static[:, :n], static[:, n:n + 2]
        offset = (y_n[:, self.pos] - anchor) * self.pos_std / self.half  # [-1, 1] across the grid
        at = torch.stack([offset[:, 0], -offset[:, 1]], dim=1).reshape(-1, 1, 1, 2)
        value = nn.functional.grid_sample(grid.reshape(-1, 1, self.cells, self.cells), at, mode="bilinear",
                                          padding_mode="border", align_corners=True).reshape(-1, 1)
        return torch.cat([y_n[:, :self.col], value, y_n[:, self.col + 1:]], dim=1)


class PixelEncoder(nn.Module):
    """Flat observation ``[B, C·H·W + P]`` → latent ``[B, D]``: first the image
    in C×H×W order as raw 0..255 values, then the ``P`` normalised proprio
    entries (the layout the engine hands a model with an image, docs/bundle.md).

    The image goes through a translation-equivariant convolution stack (4×4
    stride-2 convolutions to a map of at most 16×16, then a 3×3 one to 64
    channels) that is pooled over the whole map: each channel's maximum and
    mean (*what* is in view, e.g. which way the box faces) and its spatial
    soft-argmax keypoint (*where*, sub-pixel). Pooling keeps the parameter
    count small and does not tie a feature to a pixel, so what is learned at
    one place holds at every other (a flattened map memorised the training
    poses and did not learn the box's yaw at all: models/README.md).

    ``seen`` (readout columns, e.g. the box's pose): a linear head estimates
    those quantities, standardised, from the pooled features; the trainer
    supervises it (``jepa_loss``, term ``seen``). The estimates join the
    proprio entries as the input of an ``Encoder`` (the state models'
    encoder, with their frame features and periodic columns, which may name
    the seen quantities: the pusher seen from the box the camera found). A
    second MLP maps the pooled features to the latent for everything else in
    view (the keep-out region); the two latents add up.

    ``fields`` (``GroundField`` settings, each with its readout column
    ``col`` and its ``source``): each field's 9 samples join the pooled
    features; the centre one is the estimate of readout ``col`` (supervised
    as the ``seen`` ones are, after them) and the vector encoder also reads
    the 8 neighbours. A field's ``source`` says where it is read: at the
    robot's own position (``"proprio"``: the settings' columns are proprio
    entries) or at a position the image showed (``"seen"``: its columns are
    ``seen`` estimates, e.g. the box's ``box.x``, ``box.y``, and its mean and
    std the readouts'). The ``seen`` head reads the pooled features and the
    ``"proprio"`` fields' samples; the ``"seen"`` fields are read after it,
    at its (detached) estimates, and must come last.
    """

    def __init__(self, image_shape, proprio_dim: int, latent_dim: int, hidden: int, layers: int,
                 periodic=(), periodic_mean=(), periodic_std=(), frames=None, seen=(), ego=None,
                 fields=(), channels: int = 32, features: int = 64, ground_map=None):
        super().__init__()
        c, h, w = (int(x) for x in image_shape)
        self.image_shape = (c, h, w)
        self.image_len = c * h * w
        self.ego = EgoCrop((c, h, w), **ego) if ego is not None else None
        if self.ego is not None:
            h = w = int(ego["size"])
        convs: list[nn.Module] = []
        width, side = c, min(h, w)
        while side > 16 or not convs:
            convs += [nn.Conv2d(width, channels, 4, 2, 1), nn.SiLU()]
            width, side = channels, side // 2
        convs += [nn.Conv2d(width, features, 3, 1, 1), nn.SiLU()]
        self.conv = nn.Sequential(*convs)
        with torch.no_grad():
            _, _, mh, mw = self.conv(torch.zeros(1, c, h, w)).shape
        self.register_buffer("xs", torch.linspace(-1.0, 1.0, mw).reshape(1, 1, 1, mw))
        self.register_buffer("ys", torch.linspace(-1.0, 1.0, mh).reshape(1, 1, mh, 1))
        pooled = 4 * features
        # Around the robot, where a feature is matters as such: a coarse map
        # of the crop (8 channels, about 5×5) joins the pooled features.
        self.local = None
        if self.ego is not None:
            k = max(1, min(mh, mw) // 5)
            self.local = nn.Sequential(nn.Conv2d(features, 8, 1), nn.SiLU(), nn.AvgPool2d(k, k))
            pooled += 8 * (mh // k) * (mw // k)
        self.fields = nn.ModuleList()
        self.field_sources: list[str] = []
        field_cols = []
        for spec in fields:
            spec = dict(spec)
            field_cols.append(int(spec.pop("col")))
            self.field_sources.append(spec.pop("source", "proprio"))
            self.fields.append(GroundField((c, h, w), features=features, **spec))
        if any(s not in ("proprio", "seen") for s in self.field_sources):
            raise ValueError(f"a field's source is 'proprio' or 'seen', got {self.field_sources}")
        if self.field_sources != sorted(self.field_sources):  # "proprio" < "seen"
            raise ValueError("the fields read at seen positions come after those read at the robot's")
        own = self.field_sources.count("proprio")
        if own < len(self.fields) and not len(seen):
            raise ValueError("a field read at a seen position needs seen readouts")
        # The seen head reads the pooled features and the robot's fields.
        self.seen_width = pooled + own * GroundField.SAMPLES
        pooled += len(self.fields) * GroundField.SAMPLES
        self.seen = nn.Linear(self.seen_width, len(seen)) if len(seen) else None
        self.seen_cols = [int(i) for i in seen] + field_cols
        self.net = mlp(pooled, hidden, latent_dim, max(layers, 1))
        self.skip = nn.Linear(pooled, latent_dim, bias=False)
        self.proprio_dim = int(proprio_dim)
        # The ground map follows every pooled feature and joins the latent
        # as its static part, past the ``latent_dim`` dynamic entries.
        self.ground_map = None
        if ground_map is not None:
            if self.ego is not None:
                raise ValueError("a ground map reads the whole image; it does not go with an ego crop")
            self.ground_map = GroundMap((c, h, w), **ground_map)
        self.map_width = self.ground_map.width if self.ground_map is not None else 0
        self.feature_width = pooled
        pooled += self.map_width
        self.pooled_width = pooled
        vector = proprio_dim + len(self.seen_cols) + (GroundField.SAMPLES - 1) * len(self.fields)
        self.vector = (Encoder(vector, latent_dim, hidden, layers, periodic, periodic_mean, periodic_std, frames)
                       if vector > 0 else None)

    def _pooled(self, image: torch.Tensor, proprio: torch.Tensor) -> torch.Tensor:
        image = image * (1.0 / 255.0)
        if self.ego is not None:
            image = self.ego(image, proprio)
        # Centred on the table's grey, roughly: a better start for the SiLUs.
        maps = self.conv(image - 0.86)
        keypoints = spatial_soft_argmax(maps * 4.0, self.xs, self.ys)
        parts = [maps.amax(dim=(2, 3)), maps.mean(dim=(2, 3)), keypoints]
        if self.local is not None:
            parts.append(self.local(maps).flatten(1))
        sourced = list(zip(self.fields, self.field_sources))
        parts += [field(maps, proprio) for field, source in sourced if source == "proprio"]
        if "seen" in self.field_sources:
            # Read at the seen head's estimate (the robot's fields come first).
            at = self.seen(torch.cat(parts, dim=1)).detach()
            parts += [field(maps, at) for field, source in sourced if source == "seen"]
        if self.ground_map is not None:
            parts.append(self.ground_map(image - 0.86, proprio))
        return torch.cat(parts, dim=1)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled image features of flat observations ``[B, C·H·W + P]``
        followed by their ``P`` proprio entries: ``[B, F + P]``, rows that
        ``encode`` takes in place of the observations (a frozen convolution
        stack's features, computed once)."""
        image = x[:, : self.image_len].reshape(-1, *self.image_shape)
        return torch.cat([self._pooled(image, x[:, self.image_len:]), x[:, self.image_len:]], dim=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The latent and the standardised estimates of the ``seen`` readouts
        (``None`` without them), from flat observations or from rows of
        ``pooled`` (told apart by their width)."""
        if x.shape[1] == self.pooled_width + self.proprio_dim:
            f, proprio = x[:, : self.pooled_width], x[:, self.pooled_width:]
        else:
            image, proprio = x[:, : self.image_len].reshape(-1, *self.image_shape), x[:, self.image_len:]
            f = self._pooled(image, proprio)
        f, static = f[:, : self.feature_width], f[:, self.feature_width:]
        z = self.net(f) + self.skip(f)
        estimates = [self.seen(f[:, : self.seen_width])] if self.seen is not None else []
        around = []
        n = GroundField.SAMPLES
        first = self.feature_width - n * len(self.fields)
        for k in range(len(self.fields)):
            samples = f[:, first + k * n: first + (k + 1) * n]
            estimates.append(samples[:, :1])
            around.append(samples[:, 1:])
        seen = torch.cat(estimates, dim=1) if estimates else None
        if self.vector is not None:
            z = z + self.vector(torch.cat([proprio] + estimates + around, dim=1))
        if self.map_width:
            # The robot's position is tracked, not learned: the first two
            # dynamic entries are its odometry, standardised as its readouts
            # (the map's anchor), which the predictor then moves. The map is
            # read where they put the robot, and odometry is exact to
            # millimetres where a learned code of it was centimetres off.
            z = torch.cat([static[:, -2:], z[:, 2:], static], dim=1)
        return z, seen

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode(x)[0]


class PixelEncodeGraph(nn.Module):
    """What ``encode.onnx`` computes for a model with an image: the uint8
    image ``[B, C, H, W]`` (and, with proprio entries, the normalised ``obs``
    ``[B, P]``) laid out flat for the ``PixelEncoder``."""

    def __init__(self, encoder: PixelEncoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, image: torch.Tensor, obs: torch.Tensor | None = None) -> torch.Tensor:
        flat = image.to(torch.float32).flatten(1)
        if obs is not None:
            flat = torch.cat([flat, obs], dim=1)
        return self.encoder(flat)


class PixelRows:
    """Encoder inputs of a model with an image, built on demand from uint8
    images ``[S, C·H·W]`` and normalised proprio rows ``[S, P]`` (a float copy
    of every image would not fit in memory): ``rows[idx]`` is the flat
    ``[..., C·H·W + P]`` layout ``PixelEncoder`` reads, for any index array."""

    def __init__(self, images, proprio):
        self.images = torch.as_tensor(images).reshape(len(images), -1)
        self.proprio = torch.as_tensor(proprio, dtype=torch.float32)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __getitem__(self, idx) -> torch.Tensor:
        return torch.cat([self.images[idx].to(torch.float32), self.proprio[idx]], dim=-1)


class Predictor(nn.Module):
    """Latent ``[B, D]`` and raw action ``[B, A]`` → next latent ``[B, D]``."""

    def __init__(self, latent_dim, action_lower, action_upper, hidden, layers, bilinear: int = 0,
                 static: int = 0):
        super().__init__()
        # ``static`` latent entries after the ``latent_dim`` dynamic ones are
        # carried unchanged (a ground map: see ``GroundMap``).
        self.dyn = int(latent_dim)
        self.static = int(static)
        lo = torch.as_tensor(action_lower, dtype=torch.float32)
        hi = torch.as_tensor(action_upper, dtype=torch.float32)
        half = (hi - lo) / 2
        self.register_buffer("u_mid", ((hi + lo) / 2).reshape(1, -1))
        self.register_buffer("u_inv_half", torch.where(half > 0, 1 / half, torch.ones_like(half)).reshape(1, -1))
        a = lo.numel()
        # Multiplicative action conditioning (Oh et al., 2015): products of
        # ``bilinear`` learned projections of the latent with each action
        # component, so the effect of an action can turn with the state (a
        # push in the world frame acts on a box in the box's frame).
        self.bilinear = int(bilinear)
        self.gate = nn.Linear(latent_dim, self.bilinear) if self.bilinear > 0 else None
        self.net = mlp(latent_dim + a + self.bilinear * a, hidden, latent_dim, layers)
        # Start close to the identity map: small residual steps.
        with torch.no_grad():
            last = self.net[-1]
            last.weight.mul_(0.1)
            last.bias.zero_()

    def forward(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        un = (u - self.u_mid) * self.u_inv_half
        if self.static:
            z, static = z[:, : self.dyn], z[:, self.dyn:]
        if self.gate is None:
            z = z + self.net(torch.cat([z, un], dim=1))
        else:
            g = self.gate(z)
            prod = (g.unsqueeze(2) * un.unsqueeze(1)).flatten(1)
            z = z + self.net(torch.cat([z, un, prod], dim=1))
        return torch.cat([z, static], dim=1) if self.static else z


class Readout(nn.Module):
    """Latent ``[B, D]`` → readouts ``[B, P]`` in physical units."""

    def __init__(self, latent_dim, y_mean, y_std, hidden, layers, mapped=None):
        super().__init__()
        self.register_buffer("y_mean", torch.as_tensor(y_mean, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("y_std", torch.as_tensor(y_std, dtype=torch.float32).reshape(1, -1))
        self.dyn = int(latent_dim)
        self.net = mlp(latent_dim, hidden, self.y_mean.shape[1], layers)
        self.skip = nn.Linear(latent_dim, self.y_mean.shape[1], bias=False)
        # A readout read off the latent's ground map (``MapReadout``).
        self.mapped = mapped

    def normalised(self, z: torch.Tensor) -> torch.Tensor:
        """Standardised readouts ``(y − μ_y) / σ_y``: an MLP plus a linear
        probe on the dynamic latent; a mapped readout is read off the map."""
        d = z[:, : self.dyn]
        y = self.net(d) + self.skip(d)
        if self.mapped is not None:
            # The position readouts are the tracked entries (``PixelEncoder``).
            y = y * self.mapped.keep + d[:, :2] @ self.mapped.place
            y = self.mapped(y, z[:, self.dyn:])
        return y

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.y_mean + self.y_std * self.normalised(z)


class WorldModel(nn.Module):
    """Encoder, predictor, readout and the target encoder used for training."""

    def __init__(self, *, obs_dim, latent_dim, action_lower, action_upper, y_mean, y_std,
                 hidden, layers, readout_hidden, readout_layers,
                 periodic=(), periodic_mean=(), periodic_std=(), frames=None, bilinear: int = 0,
                 image_shape=None, seen=(), ego=None, fields=(), ground_map=None):
        super().__init__()
        # With an image, ``obs_dim`` counts the proprio entries beside it.
        mapped = None
        if ground_map is not None:
            ground_map = dict(ground_map)
            mapped = {k: ground_map.pop(k) for k in ("col", "pos")}
        self.encoder = (
            Encoder(obs_dim, latent_dim, hidden, layers, periodic, periodic_mean, periodic_std, frames)
            if image_shape is None else
            PixelEncoder(image_shape, obs_dim, latent_dim, hidden, layers, periodic, periodic_mean, periodic_std,
                         frames, seen, ego, fields, ground_map=ground_map))
        static = getattr(self.encoder, "map_width", 0)
        #: The latent's size: ``latent_dim`` dynamic entries and the static map.
        self.latent_dim = int(latent_dim) + static
        self.dyn_dim = int(latent_dim)
        self.predictor = Predictor(latent_dim, action_lower, action_upper, hidden, layers, bilinear, static)
        reader = None
        if mapped is not None:
            g = self.encoder.ground_map
            reader = MapReadout(mapped["col"], mapped["pos"], g.cells, g.half, g.pos_std.reshape(-1).tolist(),
                                len(y_mean))
        self.readout = Readout(latent_dim, y_mean, y_std, readout_hidden, readout_layers, reader)
        self.target_encoder = copy.deepcopy(self.encoder)
        for p in self.target_encoder.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update_target(self, ema: float) -> None:
        """``θ̄ ← ema·θ̄ + (1 − ema)·θ`` (``ema = 0``: copy the online encoder)."""
        for t, s in zip(self.target_encoder.parameters(), self.encoder.parameters()):
            if s.requires_grad:  # a frozen part was copied and stays equal
                t.mul_(ema).add_(s.detach(), alpha=1.0 - ema)

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Open-loop latents ``[B, K, D]`` after each of the ``K`` actions ``[B, K, A]``."""
        zs = []
        z = z0
        for k in range(actions.shape[1]):
            z = self.predictor(z, actions[:, k])
            zs.append(z)
        return torch.stack(zs, dim=1)


def vicreg_terms(z: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """VICReg variance (hinge on each dimension's std at 1) and covariance
    (squared off-diagonal covariances / D) terms of a batch ``[B, D]``."""
    b, d = z.shape
    zc = z - z.mean(dim=0, keepdim=True)
    # A batch of one (an epoch's last, short batch) has no spread to measure:
    # the unbiased variance would be 0/0.
    std = torch.sqrt(zc.var(dim=0, correction=1 if b > 1 else 0) + eps)
    var_loss = torch.relu(1.0 - std).mean()
    cov = (zc.T @ zc) / max(b - 1, 1)
    off = cov - torch.diag(torch.diagonal(cov))
    cov_loss = (off**2).sum() / d
    return var_loss, cov_loss


def jepa_loss(model: WorldModel, obs_n, actions, y_n, weights: dict) -> tuple[torch.Tensor, dict]:
    """The training loss on a batch of K-step windows.

    ``obs_n`` ``[B, K+1, O]`` normalised observations, ``actions`` ``[B, K, A]``
    raw actions, ``y_n`` ``[B, K+1, P]`` standardised readouts. Returns the
    weighted total and its terms (floats).
    """
    bsz, k1, o = obs_n.shape
    seen_cols = getattr(model.encoder, "seen_cols", [])
    if seen_cols:
        z0, seen0 = model.encoder.encode(obs_n[:, 0])
        seen = ((seen0 - y_n[:, 0, seen_cols]) ** 2).mean()
    else:
        z0, seen = model.encoder(obs_n[:, 0]), torch.zeros(())
    with torch.no_grad():
        target = model.target_encoder(obs_n[:, 1:].reshape(-1, o)).reshape(bsz, k1 - 1, -1)
    zs = model.rollout(z0, actions)
    # The static map is carried, not predicted: the JEPA terms read the
    # dynamic latent.
    d = getattr(model, "dyn_dim", z0.shape[1])
    pred = ((zs[..., :d] - target[..., :d]) ** 2).mean()
    latents = torch.cat([z0.unsqueeze(1), zs], dim=1)
    probe = ((model.readout.normalised(latents.reshape(bsz * k1, -1)).reshape(bsz, k1, -1) - y_n) ** 2).mean()
    var, cov = vicreg_terms(z0[:, :d])
    total = (weights["pred"] * pred + weights["probe"] * probe + weights["var"] * var + weights["cov"] * cov
             + weights.get("seen", 0.0) * seen)
    terms = {"pred": pred.item(), "probe": probe.item(), "var": var.item(), "cov": cov.item(), "seen": seen.item(),
             "total": total.item()}
    return total, terms
