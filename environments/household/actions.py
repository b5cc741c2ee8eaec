"""VirtualHome verbs: preconditions, effects, text parsing and formatting.

An action is a tuple ``(verb, a, b)`` of a verb name and up to two node
indices (``-1`` when unused). ``check`` returns ``None`` when every
precondition holds, else a sentence that says which one failed; ``apply``
performs the effects. Admissible actions are exactly the candidate actions
whose ``check`` passes, so the text, discrete and planner views can never
disagree. Differences from VirtualHome's reference executor are listed in
the README's design notes (its known bugs are fixed, not copied).
"""
from __future__ import annotations

import re

from omnigym.environments.household.world import (
    HELD, INSIDE, LYING, ON, SITTING, STANDING, World,
)
from omnigym.environments.household.catalog import PROP, STATE

Action = tuple  # (verb: str, a: int, b: int)

# Verb order is the canonical order of admissible actions.
VERBS = ("walk", "grab", "put", "putin", "drop", "open", "close", "switchon",
         "switchoff", "drink", "eat", "read", "sit", "lie", "standup", "wash",
         "turnto", "lookat")
VERB_INDEX = {v: i for i, v in enumerate(VERBS)}
ARITY = {v: 1 for v in VERBS} | {"put": 2, "putin": 2, "standup": 0}
# Other spellings a model or a VirtualHome script may use.
ALIASES = {"run": "walk", "find": "walk", "goto": "walk", "go": "walk",
           "putback": "put", "place": "put", "pick": "grab", "pickup": "grab",
           "take": "grab", "turnon": "switchon", "turnoff": "switchoff",
           "clean": "wash", "rinse": "wash", "scrub": "wash", "release": "drop",
           "look": "lookat", "face": "turnto", "sitdown": "sit", "liedown": "lie",
           "getup": "standup", "stand": "standup"}
# Objects that verbs act on, by property, to prune candidates cheaply.
_CLOSE_VERBS = ("grab", "open", "close", "switchon", "switchoff", "eat", "sit",
                "lie", "wash", "turnto", "lookat")
_HELD_VERBS = ("drop", "drink", "read")

_P = PROP
_S = STATE
_WASHABLE = _S["CLEAN"] | _S["DIRTY"]
# A property without which a verb can never apply: skips most checks cheaply.
_CANDIDATE_FILTER = {"grab": _P["GRABBABLE"], "open": _P["CAN_OPEN"], "close": _P["CAN_OPEN"],
                     "switchon": _P["HAS_SWITCH"], "switchoff": _P["HAS_SWITCH"], "eat": _P["EATABLE"],
                     "sit": _P["SITTABLE"], "lie": _P["LIEABLE"]}


def _need_close(world: World, a: int, what: str = "it") -> str | None:
    if not world.is_close(a):
        return f"you are not close to the {world.class_names[a]}; walk to {what} first"
    return None


def check(world: World, verb: str, a: int = -1, b: int = -1) -> str | None:
    """None when the action can be executed now, else why it cannot."""
    c = world.char
    props = world.props
    if verb == "standup":
        return None if c.posture != STANDING else "you are already standing"
    if a < 0 or a >= world.n:
        return f"{verb} needs an object"
    name = world.class_names[a]
    if verb == "walk":
        if c.posture != STANDING:
            return "you are sitting or lying; [standup] first"
        if world.is_room[a]:
            return None
        if world.is_held(a):
            return f"you are carrying the {name}"
        if not world.is_visible(a):
            return f"you do not see the {name} from here"
        return None
    if world.is_room[a]:
        return f"you cannot {verb} a room"
    if verb in ("put", "putin"):
        if not world.is_held(a):
            return f"you are not holding the {name}"
        if b < 0 or b >= world.n or world.is_room[b]:
            return f"{verb} needs a destination object"
        dest = world.class_names[b]
        if b == a or world.holder(b) == a:
            return f"you cannot put the {name} {'in' if verb == 'putin' else 'on'} itself"
        if verb == "put" and not props[b] & _P["SURFACES"]:
            return f"the {dest} has no surface to put things on"
        if verb == "putin":
            if not props[b] & _P["CONTAINERS"]:
                return f"the {dest} is not a container"
            if world.state[b] & _S["CLOSED"]:
                return f"the {dest} is closed; open it first"
        return _need_close(world, b, f"the {dest}")
    if verb in _HELD_VERBS:
        need = {"drop": 0, "drink": _P["DRINKABLE"] | _P["RECIPIENT"], "read": _P["READABLE"]}[verb]
        if need and not props[a] & need:
            return f"you cannot {verb} the {name}"
        if not world.is_held(a):
            return f"you are not holding the {name}"
        return None
    if verb == "grab":
        if not props[a] & _P["GRABBABLE"]:
            return f"the {name} cannot be picked up"
        if world.is_held(a):
            return f"you already hold the {name}"
        if world.holder(a) >= 0:
            return f"the {name} is on something you carry"
        if world.inside_closed(a):
            return f"the {name} is inside something closed"
        if world.free_hand() is None:
            return "both hands are full"
        return _need_close(world, a)
    if verb in ("open", "close"):
        if not props[a] & _P["CAN_OPEN"]:
            return f"the {name} cannot be opened or closed"
        if verb == "open":
            if not world.state[a] & _S["CLOSED"]:
                return f"the {name} is already open"
            if world.state[a] & _S["ON"]:
                return f"the {name} is on; switch it off first"
            if world.free_hand() is None:
                return "you need a free hand to open it"
        elif not world.state[a] & _S["OPEN"]:
            return f"the {name} is already closed"
        return _need_close(world, a)
    if verb in ("switchon", "switchoff"):
        if not props[a] & _P["HAS_SWITCH"]:
            return f"the {name} has no switch"
        if verb == "switchon":
            if not world.state[a] & _S["OFF"]:
                return f"the {name} is already on"
            if world.state[a] & _S["OPEN"]:
                return f"the {name} is open; close it first"
        elif not world.state[a] & _S["ON"]:
            return f"the {name} is already off"
        return _need_close(world, a)
    if verb == "eat":
        if not props[a] & _P["EATABLE"]:
            return f"the {name} is not food"
        return _need_close(world, a)
    if verb in ("sit", "lie"):
        if not props[a] & _P["SITTABLE" if verb == "sit" else "LIEABLE"]:
            return f"you cannot {verb} on the {name}"
        if c.posture == (SITTING if verb == "sit" else LYING):
            return f"you are already {'sitting' if verb == 'sit' else 'lying'}"
        return _need_close(world, a)
    if verb == "wash":
        if not world.state[a] & _WASHABLE:
            return f"the {name} cannot be washed"
        if not world.state[a] & _S["DIRTY"]:
            return f"the {name} is already clean"
        return _need_close(world, a)
    if verb == "turnto":
        return _need_close(world, a)
    if verb == "lookat":
        return None if c.facing == a else f"you are not facing the {name}; [turnto] it first"
    return f"unknown verb {verb!r}"


def apply(world: World, verb: str, a: int = -1, b: int = -1) -> None:
    """Perform the effects of an action whose ``check`` passed."""
    c = world.char
    if verb == "walk":
        if world.is_room[a]:
            c.room, c.near = a, -1
        else:
            c.near = a
        c.facing = -1
    elif verb == "grab":
        old_parent = world.parent[a]
        if c.right < 0:
            c.right = a
        else:
            c.left = a
        world.move(a, -1, HELD)
        if c.near == a:  # stay next to where it was taken from
            c.near = old_parent if old_parent >= 0 and not world.is_room[old_parent] else -1
    elif verb in ("put", "putin", "drop"):
        if c.right == a:
            c.right = -1
        else:
            c.left = -1
        if verb == "drop":
            world.move(a, c.room, INSIDE)
        else:
            world.move(a, b, ON if verb == "put" else INSIDE)
            if world.holder(b) < 0:
                c.near = b
    elif verb in ("open", "close", "switchon", "switchoff"):
        flag = {"open": "OPEN", "close": "CLOSED", "switchon": "ON", "switchoff": "OFF"}[verb]
        world.set_state_flag(a, flag)
    elif verb in ("sit", "lie"):
        c.posture = SITTING if verb == "sit" else LYING
        c.seat = c.near = a
    elif verb == "standup":
        c.posture, c.seat = STANDING, -1
    elif verb == "wash":
        world.set_state_flag(a, "CLEAN")
    elif verb == "turnto":
        c.facing = a
    # drink, eat, read, lookat: no change of state (as in VirtualHome).


def execute(world: World, action: Action) -> str | None:
    """Check, then apply. Returns None on success or the failure reason."""
    verb, a, b = action
    reason = check(world, verb, a, b)
    if reason is None:
        apply(world, verb, a, b)
    return reason


def admissible(world: World, visible: list[int] | None = None) -> list[Action]:
    """Every action whose preconditions hold now, in canonical order."""
    visible = world.visible() if visible is None else visible
    close = [i for i in visible if world.is_close(i)]
    held = world.held()
    props = world.props
    out: list[Action] = []
    standing = world.char.posture == STANDING
    for verb in VERBS:
        if verb == "walk":
            if standing:
                out.extend(("walk", r, -1) for r in world.rooms)
                out.extend(("walk", i, -1) for i in visible if not world.is_held(i))
        elif verb in ("put", "putin"):
            for h in held:
                out.extend((verb, h, d) for d in close if check(world, verb, h, d) is None)
        elif verb in _HELD_VERBS:
            out.extend((verb, h, -1) for h in held if check(world, verb, h) is None)
        elif verb == "standup":
            if not standing:
                out.append(("standup", -1, -1))
        else:
            need = _CANDIDATE_FILTER.get(verb, 0)
            state_need = _WASHABLE if verb == "wash" else 0
            out.extend((verb, i, -1) for i in close
                       if (not need or props[i] & need) and (not state_need or world.state[i] & state_need)
                       and check(world, verb, i) is None)
    return out


def format_action(world: World, action: Action) -> str:
    verb, a, b = action
    if ARITY[verb] == 0:
        return f"[{verb}]"
    if ARITY[verb] == 1:
        return f"[{verb}] {world.names[a]}"
    return f"[{verb}] {world.names[a]} {world.names[b]}"


# Patterns avoid nested quantifiers over the same characters, so parsing stays
# linear even on hostile inputs; actions are also cut to MAX_ACTION_CHARS.
MAX_ACTION_CHARS = 500
_BRACKET = re.compile(r"^(?:<char\d{0,3}>)?\s*\[([a-zA-Z_ ]{1,40})\](.*)$", re.S)
_ARG = re.compile(r"<([^<>]{1,80})>\s*(\([^()<>]*\)?)?")
_ID = re.compile(r"\(\s*(\d{1,9})\s*\)")
_FILLER = {"to", "the", "a", "an", "on", "onto", "in", "into", "inside", "at", "up",
           "down", "of", "from", "with", "my", "your", "please", "and"}


def _normalise_verb(word: str) -> str:
    word = word.lower().replace("_", "").replace(" ", "").replace("-", "")
    return ALIASES.get(word, word)


def parse_action(world: World, text: str) -> Action | str:
    """Parse a VirtualHome script line (``[putin] <mug> (12) <microwave> (5)``)
    or a plain phrase (``put mug in microwave``). Returns an action, or a
    sentence explaining what could not be understood."""
    if not isinstance(text, str):
        return f"actions are strings, got {type(text).__name__}"
    text = text[:MAX_ACTION_CHARS].strip()
    text = text.splitlines()[0] if text else ""
    if not text:
        return "empty action; write e.g. [walk] <kitchen>"
    m = _BRACKET.match(text)
    if m:
        verb = _normalise_verb(m.group(1))
        args = []
        for cls, raw_id in _ARG.findall(m.group(2)):
            node_id = None
            if raw_id:
                id_match = _ID.fullmatch(raw_id.strip())
                if id_match is None:
                    return f"bad object id {raw_id[:20]!r} after <{cls.strip()[:40]}>: ids look like (12)"
                node_id = int(id_match.group(1))
            args.append((cls.strip().lower(), node_id))
    else:
        words = re.findall(r"[a-zA-Z_]+", text.lower())
        if not words:
            return f"cannot parse {text[:60]!r}; write e.g. [grab] <mug>"
        verb = _normalise_verb(words[0])
        rest = words[1:]
        if verb in ("pick", "grab") and rest[:1] == ["up"]:
            rest = rest[1:]
        if verb == "put" and any(w in ("in", "into", "inside") for w in rest):
            verb = "putin"
        args = [(w, None) for w in rest if w not in _FILLER]
    if verb not in ARITY:
        return f"unknown verb {verb!r}; known verbs: {', '.join(VERBS)}"
    arity = ARITY[verb]
    if len(args) < arity:
        example = {0: "[standup]", 1: f"[{verb}] <object>", 2: f"[{verb}] <object> <destination>"}[arity]
        return f"{verb} takes {arity} object(s): {example}"
    nodes = []
    for role, (cls, node_id) in enumerate(args[:arity]):
        node = _resolve(world, verb, role, cls, node_id)
        if isinstance(node, str):
            return node
        nodes.append(node)
    nodes += [-1] * (2 - len(nodes))
    return (verb, nodes[0], nodes[1])


def _resolve(world: World, verb: str, role: int, cls: str, node_id: int | None) -> int | str:
    """Bind a class name (and optional VirtualHome id) to a node the agent can
    perceive: a room, or an object it sees or carries. Hidden and missing
    objects get the same answer, so failures never reveal what is out of sight."""
    def perceivable(i: int) -> bool:
        return world.is_room[i] or world.is_visible(i)

    if node_id is not None:
        i = world.by_id.get(node_id)
        if i is None or world.class_names[i] != cls or not perceivable(i):
            return f"you do not see a <{cls}> ({node_id}) here"
        return i
    candidates = [i for i in world.by_class.get(cls, ()) if perceivable(i)]
    if not candidates:
        return f"you do not see a <{cls}> here"
    # Prefer what the verb can use: held for the first argument of put/drop,
    # then close; ties broken by index so parsing is deterministic.
    held_first = role == 0 and verb in ("put", "putin") + _HELD_VERBS

    def rank(i: int) -> tuple:
        return (not (held_first and world.is_held(i)), not world.is_close(i), i)
    return min(candidates, key=rank)
