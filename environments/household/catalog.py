"""Object classes of the household family: VirtualHome names, properties, states.

Property and state names are VirtualHome's own (its `Property` and `State`
enums), so scene graphs round-trip through VirtualHome's JSON format. Each
class lists its default properties, its VirtualHome category, the rooms it
may be generated in, and for furniture where small objects may be placed.
"""
from __future__ import annotations

from dataclasses import dataclass

# VirtualHome's 23 property names, in a fixed order: the bit index of each.
PROPERTIES = (
    "SURFACES", "GRABBABLE", "SITTABLE", "LIEABLE", "HANGABLE", "DRINKABLE",
    "EATABLE", "RECIPIENT", "CUTTABLE", "POURABLE", "CAN_OPEN", "HAS_SWITCH",
    "READABLE", "LOOKABLE", "CONTAINERS", "CLOTHES", "PERSON", "BODY_PART",
    "COVER_OBJECT", "HAS_PLUG", "HAS_PAPER", "MOVABLE", "CREAM",
)
PROP = {name: 1 << i for i, name in enumerate(PROPERTIES)}

# Object states we simulate, as bits. Pairs are mutually exclusive.
STATES = ("OPEN", "CLOSED", "ON", "OFF", "CLEAN", "DIRTY", "PLUGGED_IN", "PLUGGED_OUT")
STATE = {name: 1 << i for i, name in enumerate(STATES)}
STATE_OPPOSITE = {"OPEN": "CLOSED", "CLOSED": "OPEN", "ON": "OFF", "OFF": "ON",
                  "CLEAN": "DIRTY", "DIRTY": "CLEAN", "PLUGGED_IN": "PLUGGED_OUT",
                  "PLUGGED_OUT": "PLUGGED_IN"}
# Character postures (states of the character node in VirtualHome).
POSTURES = ("STANDING", "SITTING", "LYING")

ROOM_CLASSES = ("kitchen", "livingroom", "bedroom", "bathroom", "diningroom", "office")


@dataclass(frozen=True)
class ObjectClass:
    name: str
    category: str
    properties: tuple[str, ...]
    rooms: tuple[str, ...] = ()          # rooms it may be generated in
    places: tuple[str, ...] = ()         # furniture classes it may be put on/in
    dirty_chance: float = 0.0            # chance a generated instance starts DIRTY

    @property
    def props(self) -> int:
        return sum(PROP[p] for p in self.properties)


def _furniture(name, category, props, rooms):
    return ObjectClass(name, category, tuple(props.split()), tuple(rooms.split()))


def _item(name, category, props, places, dirty=0.0):
    return ObjectClass(name, category, tuple(props.split()), (), tuple(places.split()), dirty)


# Furniture and appliances: placed in rooms, never grabbed.
FURNITURE = [
    _furniture("fridge", "Appliances", "CAN_OPEN CONTAINERS HAS_PLUG", "kitchen"),
    _furniture("microwave", "Appliances", "CAN_OPEN CONTAINERS HAS_SWITCH HAS_PLUG", "kitchen"),
    _furniture("stove", "Appliances", "CAN_OPEN CONTAINERS HAS_SWITCH SURFACES", "kitchen"),
    _furniture("dishwasher", "Appliances", "CAN_OPEN CONTAINERS HAS_SWITCH", "kitchen"),
    _furniture("coffeemaker", "Appliances", "HAS_SWITCH HAS_PLUG RECIPIENT", "kitchen"),
    _furniture("toaster", "Appliances", "HAS_SWITCH HAS_PLUG CONTAINERS", "kitchen"),
    _furniture("sink", "Furniture", "CONTAINERS RECIPIENT", "kitchen bathroom"),
    _furniture("kitchentable", "Furniture", "SURFACES MOVABLE", "kitchen diningroom"),
    _furniture("kitchencabinet", "Furniture", "CAN_OPEN CONTAINERS SURFACES", "kitchen"),
    _furniture("kitchencounter", "Furniture", "SURFACES", "kitchen"),
    _furniture("sofa", "Furniture", "SITTABLE LIEABLE SURFACES", "livingroom"),
    _furniture("tv", "Electronics", "HAS_SWITCH LOOKABLE HAS_PLUG", "livingroom bedroom"),
    _furniture("coffeetable", "Furniture", "SURFACES MOVABLE", "livingroom"),
    _furniture("bookshelf", "Furniture", "CONTAINERS SURFACES", "livingroom office"),
    _furniture("radio", "Electronics", "HAS_SWITCH HAS_PLUG", "livingroom"),
    _furniture("chair", "Furniture", "SITTABLE MOVABLE", "kitchen diningroom office livingroom"),
    _furniture("bed", "Furniture", "SITTABLE LIEABLE SURFACES", "bedroom"),
    _furniture("nightstand", "Furniture", "CAN_OPEN CONTAINERS SURFACES", "bedroom"),
    _furniture("closet", "Furniture", "CAN_OPEN CONTAINERS", "bedroom"),
    _furniture("desk", "Furniture", "SURFACES MOVABLE", "bedroom office"),
    _furniture("computer", "Electronics", "HAS_SWITCH LOOKABLE HAS_PLUG", "office bedroom"),
    _furniture("tablelamp", "Electronics", "HAS_SWITCH HAS_PLUG", "bedroom livingroom office"),
    _furniture("toilet", "Furniture", "SITTABLE CAN_OPEN CONTAINERS", "bathroom"),
    _furniture("bathtub", "Furniture", "CONTAINERS LIEABLE", "bathroom"),
    _furniture("bathroomcabinet", "Furniture", "CAN_OPEN CONTAINERS", "bathroom"),
    _furniture("bathroomcounter", "Furniture", "SURFACES", "bathroom"),
    _furniture("washingmachine", "Appliances", "CAN_OPEN CONTAINERS HAS_SWITCH HAS_PLUG", "bathroom"),
    _furniture("diningtable", "Furniture", "SURFACES MOVABLE", "diningroom"),
    _furniture("cupboard", "Furniture", "CAN_OPEN CONTAINERS", "diningroom"),
    _furniture("filingcabinet", "Furniture", "CAN_OPEN CONTAINERS", "office"),
]

# Small objects: generated on or in furniture, grabbable.
KITCHEN_SURFACES = "kitchentable kitchencounter kitchencabinet fridge diningtable cupboard"
ITEMS = [
    _item("mug", "Kitchen", "GRABBABLE RECIPIENT MOVABLE", KITCHEN_SURFACES + " coffeetable desk", 0.3),
    _item("cup", "Kitchen", "GRABBABLE RECIPIENT MOVABLE", KITCHEN_SURFACES, 0.3),
    _item("waterglass", "Kitchen", "GRABBABLE RECIPIENT DRINKABLE MOVABLE", KITCHEN_SURFACES, 0.3),
    _item("plate", "Kitchen", "GRABBABLE RECIPIENT SURFACES MOVABLE", KITCHEN_SURFACES + " dishwasher", 0.4),
    _item("bowl", "Kitchen", "GRABBABLE RECIPIENT MOVABLE", KITCHEN_SURFACES + " dishwasher", 0.4),
    _item("fork", "Kitchen", "GRABBABLE MOVABLE", KITCHEN_SURFACES + " dishwasher", 0.3),
    _item("knife", "Kitchen", "GRABBABLE MOVABLE", KITCHEN_SURFACES, 0.3),
    _item("spoon", "Kitchen", "GRABBABLE MOVABLE", KITCHEN_SURFACES + " dishwasher", 0.3),
    _item("fryingpan", "Kitchen", "GRABBABLE RECIPIENT MOVABLE", "stove kitchencabinet kitchencounter", 0.4),
    _item("pot", "Kitchen", "GRABBABLE RECIPIENT MOVABLE CONTAINERS", "stove kitchencabinet kitchencounter", 0.4),
    _item("apple", "Food", "GRABBABLE EATABLE CUTTABLE MOVABLE", KITCHEN_SURFACES + " coffeetable"),
    _item("banana", "Food", "GRABBABLE EATABLE MOVABLE", KITCHEN_SURFACES + " coffeetable"),
    _item("breadslice", "Food", "GRABBABLE EATABLE CUTTABLE MOVABLE", "kitchentable kitchencounter fridge toaster"),
    _item("cereal", "Food", "GRABBABLE EATABLE MOVABLE", "kitchencabinet kitchencounter cupboard"),
    _item("milk", "Food", "GRABBABLE DRINKABLE POURABLE MOVABLE", "fridge kitchentable"),
    _item("juice", "Food", "GRABBABLE DRINKABLE POURABLE MOVABLE", "fridge kitchentable"),
    _item("cheese", "Food", "GRABBABLE EATABLE CUTTABLE MOVABLE", "fridge kitchencounter"),
    _item("cupcake", "Food", "GRABBABLE EATABLE MOVABLE", "kitchentable diningtable fridge coffeetable"),
    _item("book", "Props", "GRABBABLE READABLE MOVABLE HAS_PAPER", "bookshelf desk nightstand coffeetable sofa bed"),
    _item("magazine", "Props", "GRABBABLE READABLE MOVABLE HAS_PAPER", "coffeetable bookshelf desk nightstand"),
    _item("remotecontrol", "Electronics", "GRABBABLE HAS_SWITCH MOVABLE", "coffeetable sofa nightstand"),
    _item("cellphone", "Electronics", "GRABBABLE HAS_SWITCH HAS_PLUG MOVABLE", "desk nightstand coffeetable sofa bed"),
    _item("towel", "Props", "GRABBABLE CLOTHES MOVABLE", "bathroomcounter bathroomcabinet bathtub closet", 0.3),
    _item("toothbrush", "Props", "GRABBABLE MOVABLE", "bathroomcounter bathroomcabinet sink"),
    _item("toothpaste", "Props", "GRABBABLE MOVABLE CREAM", "bathroomcounter bathroomcabinet"),
    _item("soap", "Props", "GRABBABLE MOVABLE", "bathroomcounter bathroomcabinet sink bathtub"),
    _item("pillow", "Props", "GRABBABLE MOVABLE", "bed sofa closet"),
    _item("clothesshirt", "Clothes", "GRABBABLE CLOTHES MOVABLE", "closet bed washingmachine", 0.4),
    _item("clothespants", "Clothes", "GRABBABLE CLOTHES MOVABLE", "closet bed washingmachine", 0.4),
    _item("candle", "Decor", "GRABBABLE MOVABLE", "diningtable coffeetable nightstand bookshelf"),
    _item("keyboard", "Electronics", "GRABBABLE MOVABLE", "desk filingcabinet"),
    _item("mouse", "Electronics", "GRABBABLE MOVABLE", "desk filingcabinet"),
    _item("paper", "Props", "GRABBABLE READABLE MOVABLE", "desk filingcabinet bookshelf"),
    _item("pen", "Props", "GRABBABLE MOVABLE", "desk filingcabinet nightstand"),
    _item("wineglass", "Kitchen", "GRABBABLE RECIPIENT MOVABLE", "cupboard diningtable kitchencabinet", 0.3),
    _item("winebottle", "Food", "GRABBABLE DRINKABLE POURABLE MOVABLE", "cupboard diningtable fridge"),
]

CLASSES: dict[str, ObjectClass] = {c.name: c for c in FURNITURE + ITEMS}
for _room in ROOM_CLASSES:
    CLASSES[_room] = ObjectClass(_room, "Rooms", ())
CLASSES["character"] = ObjectClass("character", "Characters", ("PERSON",))

# A fixed vocabulary of class names: index 0 is reserved for "unknown class"
# (scene graphs may bring classes we do not know), so encodings stay fixed-size.
CLASS_VOCAB = ("<unknown>",) + tuple(sorted(CLASSES))
CLASS_INDEX = {name: i for i, name in enumerate(CLASS_VOCAB)}

# How many characters a piece of furniture seats (VirtualHome's limits).
SIT_CAPACITY = {"sofa": 4, "couch": 4, "bed": 4, "loveseat": 2, "bench": 2}
LIE_CAPACITY = {"bed": 3, "sofa": 2, "couch": 2, "bathtub": 2}
