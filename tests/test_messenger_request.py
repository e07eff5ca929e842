"""The v1 Messenger object (`channels["OTT-Messaging"].fb`, seed 003), checked by `decode_messenger`, and
the Graph Send API body `send_api_body` builds from it.

One table: each case is an `fb` object and either the refusal it earns (the code and words of the
description that name the field) or the normalised `MessengerContent`, as builtins (a deprecated airline
template also shows `"deprecated": True`). Every JSON sample of seed 003's Messenger section is an
accepted case, cleaned of its comments: the first sample's `"NO_PUSH"or"SILENT_PUSH"` is `"NO_PUSH"`,
the receipt sample's stray closing lines are dropped (its destination is the others'), and the media
samples' URL placeholders ("<image-url>") are example URLs. RESPONSE, the default messaging_type, is
not stored, so it does not show. The samples
are kept whole, as v1 requests, in `SEED_REQUESTS` for the end-to-end tests.

Then one golden Graph body per message type, and Graph's errors looked up in `messenger_codes`.
"""

import json
from dataclasses import dataclass
from typing import Any

import msgspec
import pytest

from tidings.errors import ApiError
from tidings.schema.messenger import MessengerContent, decode_messenger, send_api_body
from tidings.specs import messenger_codes as codes
from tidings.statuses import Status

FIELD = "channels.OTT-Messaging.fb"


@dataclass(frozen=True)
class Refused:
    code: str
    words: str  # a substring of the description: the field it names


def missing(words: str) -> Refused:
    return Refused("7003", f"{FIELD}.{words}")


def invalid(words: str) -> Refused:
    return Refused("7004", f"{FIELD}.{words}")


Expected = Refused | dict[str, Any]

# --- seed 003's samples, as v1 requests ------------------------------------------------------------------

SEED_REQUESTS: dict[str, dict[str, Any]] = {
    "text, tag and quick replies": {
        "appid": "<app-id>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "text": "Welcome to Webex Connect",
                    "notification_type": "NO_PUSH",
                    "messaging_type": "MESSAGE_TAG",
                    "tag": "ACCOUNT_UPDATE",
                    "quick_replies": [
                        {
                            "content_type": "text",
                            "title": "Red",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED",
                        },
                        {
                            "content_type": "text",
                            "title": "Green",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_GREEN",
                        },
                    ],
                    "type": "conversation",
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "image": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {"type": "image", "payload": {"url": "https://example.com/image.png"}}
                }  # "<image-url>"
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "audio": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {"type": "audio", "payload": {"url": "https://example.com/audio.mp3"}}
                }  # "<audio-url>"
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "video": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {"type": "video", "payload": {"url": "https://example.com/video.mp4"}}
                }  # "<video-url>"
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "file": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {"type": "file", "payload": {"url": "https://example.com/file.pdf"}}
                }  # "<file-url>"
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "generic template": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "generic",
                            "elements": [
                                {
                                    "title": "Classic White T-Shirt",
                                    "image_url": "http://petersapparel.parseapp.com/img/item100-thumb.png",
                                    "subtitle": "Soft white cotton t-shirt is back in style",
                                    "buttons": [
                                        {
                                            "type": "web_url",
                                            "url": "https://petersapparel.parseapp.com/view_item?item_id=100",
                                            "title": "View Item",
                                        },
                                        {
                                            "type": "web_url",
                                            "url": "https://petersapparel.parseapp.com/buy_item?item_id=100",
                                            "title": "Buy Item",
                                        },
                                        {"type": "postback", "title": "Bookmark Item", "payload": "check"},
                                    ],
                                },
                                {
                                    "title": "Giordano 60058 Black/Orange Analog Watch - For Men",
                                    "image_url": "http://img6a.flixcart.com/image/watch/g/q/z/60058-black-orange-giordano-400x400-imae7c8rhnp4rfze.jpeg",
                                    "subtitle": "Watch Watch",
                                    "buttons": [
                                        {
                                            "type": "web_url",
                                            "url": "http://www.flipkart.com/giordano-60058-black-orange-analog-watch-men/p/itmdw4v6gkgejetj?pid=WATDW4V5GYEYQGQZ&al=rWnbPKcgb3ESJptH0q72XsldugMWZuE7Phn6Yd2VMSLMQz8fzEH13Ce0tGaT7ePiWmFmBeJJs7Q%3D&offer=nb%3Amp%3A0405c80713&ref=L%3A-7770517350658453810&srno=b_1",
                                            "title": "View Item",
                                        },
                                        {
                                            "type": "web_url",
                                            "url": "https://petersapparel.parseapp.com/buy_item?item_id=101",
                                            "title": "Buy Item",
                                        },
                                        {
                                            "type": "postback",
                                            "title": "Bookmark Item",
                                            "payload": "USER_DEFINED_PAYLOAD_FOR_ITEM101",
                                        },
                                    ],
                                },
                            ],
                        },
                    }
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "button template": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "button",
                            "text": "",
                            "buttons": [
                                {
                                    "type": "web_url",
                                    "url": "https://www.google.co.in/maps/@17.4495157,78.4000172,16z?hl=en",
                                    "title": "Show location",
                                },
                                {"type": "postback", "title": "Start Chatting", "payload": "1232"},
                                {
                                    "type": "phone_number",
                                    "title": "Call Representative",
                                    "payload": "+9177xxxxxxxx",
                                },
                            ],
                        },
                    }
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "receipt template": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "receipt",
                            "recipient_name": "Stephane Crozatier",
                            "order_number": "1234444415678902",
                            "currency": "USD",
                            "payment_method": "Visa 2345",
                            "order_url": "http://petersapparel.parseapp.com/order?order_id=123456",
                            "timestamp": "1428444852",
                            "elements": [
                                {
                                    "title": "Classic White T-Shirt",
                                    "subtitle": "100% Soft and Luxurious Cotton",
                                    "quantity": 2,
                                    "price": 50,
                                    "currency": "USD",
                                    "image_url": "http://petersapparel.parseapp.com/img/whiteshirt.png",
                                },
                                {
                                    "title": "Classic Gray T-Shirt",
                                    "subtitle": "100% Soft and Luxurious Cotton",
                                    "quantity": 1,
                                    "price": 25,
                                    "currency": "USD",
                                    "image_url": "http://petersapparel.parseapp.com/img/grayshirt.png",
                                },
                            ],
                            "address": {
                                "street_1": "1 Hacker Way",
                                "street_2": "",
                                "city": "Menlo Park",
                                "postal_code": "94025",
                                "state": "CA",
                                "country": "US",
                            },
                            "summary": {
                                "subtotal": 75.0,
                                "shipping_cost": 4.95,
                                "total_tax": 6.19,
                                "total_cost": 56.14,
                            },
                            "adjustments": [
                                {"name": "New Customer Discount", "amount": 20},
                                {"name": "$10 Off Coupon", "amount": 10},
                            ],
                        },
                    }
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "airline itinerary (deprecated)": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "airline_itinerary",
                            "intro_message": "Here's your flight itinerary.",
                            "locale": "en_US",
                            "pnr_number": "ABCDEF",
                            "passenger_info": [
                                {
                                    "name": "Farbound Smith Jr",
                                    "ticket_number": "0741234567890",
                                    "passenger_id": "p001",
                                },
                                {
                                    "name": "Nick Jones",
                                    "ticket_number": "0741234567891",
                                    "passenger_id": "p002",
                                },
                            ],
                            "flight_info": [
                                {
                                    "connection_id": "c001",
                                    "segment_id": "s001",
                                    "flight_number": "KL9123",
                                    "aircraft_type": "Boeing 737",
                                    "departure_airport": {
                                        "airport_code": "SFO",
                                        "city": "San Francisco",
                                        "terminal": "T4",
                                        "gate": "G8",
                                    },
                                    "arrival_airport": {
                                        "airport_code": "SLC",
                                        "city": "Salt Lake City",
                                        "terminal": "T4",
                                        "gate": "G8",
                                    },
                                    "flight_schedule": {
                                        "departure_time": "2016-01-02T19:45",
                                        "arrival_time": "2016-01-02T21:20",
                                    },
                                    "travel_class": "business",
                                },
                                {
                                    "connection_id": "c002",
                                    "segment_id": "s002",
                                    "flight_number": "KL321",
                                    "aircraft_type": "Boeing 747-200",
                                    "travel_class": "business",
                                    "departure_airport": {
                                        "airport_code": "SLC",
                                        "city": "Salt Lake City",
                                        "terminal": "T1",
                                        "gate": "G33",
                                    },
                                    "arrival_airport": {
                                        "airport_code": "AMS",
                                        "city": "Amsterdam",
                                        "terminal": "T1",
                                        "gate": "G33",
                                    },
                                    "flight_schedule": {
                                        "departure_time": "2016-01-02T22:45",
                                        "arrival_time": "2016-01-03T17:20",
                                    },
                                },
                            ],
                            "passenger_segment_info": [
                                {
                                    "segment_id": "s001",
                                    "passenger_id": "p001",
                                    "seat": "12A",
                                    "seat_type": "Business",
                                    "product_info": [
                                        {"title": "Lounge", "value": "Complimentary lounge access"},
                                        {"title": "Baggage", "value": "1 extra bag 50lbs"},
                                    ],
                                },
                                {
                                    "segment_id": "s001",
                                    "passenger_id": "p002",
                                    "seat": "12B",
                                    "seat_type": "Business",
                                    "product_info": [
                                        {"title": "Lounge", "value": "Complimentary lounge access"},
                                        {"title": "Baggage", "value": "1 extra bag 50lbs"},
                                    ],
                                },
                                {
                                    "segment_id": "s002",
                                    "passenger_id": "p001",
                                    "seat": "73A",
                                    "seat_type": "World Business",
                                    "product_info": [
                                        {"title": "Lounge", "value": "Complimentary lounge access"},
                                        {"title": "Baggage", "value": "1 extra bag 50lbs"},
                                    ],
                                },
                                {
                                    "segment_id": "s002",
                                    "passenger_id": "p002",
                                    "seat": "73B",
                                    "seat_type": "World Business",
                                    "product_info": [
                                        {"title": "Lounge", "value": "Complimentary lounge access"},
                                        {"title": "Baggage", "value": "1 extra bag 50lbs"},
                                    ],
                                },
                            ],
                            "price_info": [{"title": "Fuel surcharge", "amount": "1597", "currency": "USD"}],
                            "base_price": "12206",
                            "tax": "200",
                            "total_price": "14003",
                            "currency": "USD",
                        },
                    }
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "airline check-in (deprecated)": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "airline_checkin",
                            "intro_message": "Check-in is available now.",
                            "locale": "en_US",
                            "pnr_number": "ABCDEF",
                            "flight_info": [
                                {
                                    "flight_number": "f001",
                                    "departure_airport": {
                                        "airport_code": "SFO",
                                        "city": "San Francisco",
                                        "terminal": "T4",
                                        "gate": "G8",
                                    },
                                    "arrival_airport": {
                                        "airport_code": "SEA",
                                        "city": "Seattle",
                                        "terminal": "T4",
                                        "gate": "G8",
                                    },
                                    "flight_schedule": {
                                        "boarding_time": "2016-01-05T15:05",
                                        "departure_time": "2016-01-05T15:45",
                                        "arrival_time": "2016-01-05T17:30",
                                    },
                                }
                            ],
                            "checkin_url": "https://www.airline.com/check-in",
                        },
                    }
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "airline boarding pass (deprecated)": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "airline_boardingpass",
                            "intro_message": "You are checked in.",
                            "locale": "en_US",
                            "boarding_pass": [
                                {
                                    "passenger_name": "SMITH/NICOLAS",
                                    "pnr_number": "CG4X7U",
                                    "travel_class": "business",
                                    "seat": "74J",
                                    "auxiliary_fields": [
                                        {"label": "Terminal", "value": "T1"},
                                        {"label": "Departure", "value": "30OCT 19:05"},
                                    ],
                                    "secondary_fields": [
                                        {"label": "Boarding", "value": "18:30"},
                                        {"label": "Gate", "value": "D57"},
                                        {"label": "Seat", "value": "74J"},
                                        {"label": "Sec.Nr.", "value": "003"},
                                    ],
                                    "logo_image_url": "https://www.example.com/en/logo.png",
                                    "header_image_url": "https://www.example.com/en/fb/header.png",
                                    "qr_code": "M1SMITH/NICOLAS  CG4X7U nawouehgawgnapwi3jfa0wfh",
                                    "above_bar_code_image_url": "https://www.example.com/en/PLAT.png",
                                    "flight_info": {
                                        "flight_number": "KL0642",
                                        "departure_airport": {
                                            "airport_code": "JFK",
                                            "city": "New York",
                                            "terminal": "T1",
                                            "gate": "D57",
                                        },
                                        "arrival_airport": {"airport_code": "AMS", "city": "Amsterdam"},
                                        "flight_schedule": {
                                            "departure_time": "2016-01-02T19:05",
                                            "arrival_time": "2016-01-05T17:30",
                                        },
                                    },
                                },
                                {
                                    "passenger_name": "JONES/FARBOUND",
                                    "pnr_number": "CG4X7U",
                                    "travel_class": "business",
                                    "seat": "74K",
                                    "auxiliary_fields": [
                                        {"label": "Terminal", "value": "T1"},
                                        {"label": "Departure", "value": "30OCT 19:05"},
                                    ],
                                    "secondary_fields": [
                                        {"label": "Boarding", "value": "18:30"},
                                        {"label": "Gate", "value": "D57"},
                                        {"label": "Seat", "value": "74K"},
                                        {"label": "Sec.Nr.", "value": "004"},
                                    ],
                                    "logo_image_url": "https://www.example.com/en/logo.png",
                                    "header_image_url": "https://www.example.com/en/fb/header.png",
                                    "qr_code": "M1JONES/FARBOUND  CG4X7U nawouehgawgnapwi3jfa0wfh",
                                    "above_bar_code_image_url": "https://www.example.com/en/PLAT.png",
                                    "flight_info": {
                                        "flight_number": "KL0642",
                                        "departure_airport": {
                                            "airport_code": "JFK",
                                            "city": "New York",
                                            "terminal": "T1",
                                            "gate": "D57",
                                        },
                                        "arrival_airport": {"airport_code": "AMS", "city": "Amsterdam"},
                                        "flight_schedule": {
                                            "departure_time": "2016-01-02T19:05",
                                            "arrival_time": "2016-01-05T17:30",
                                        },
                                    },
                                },
                            ],
                        },
                    }
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "airline flight update (deprecated)": {
        "appid": "<appid>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "attachment": {
                        "type": "template",
                        "payload": {
                            "template_type": "airline_update",
                            "intro_message": "Your flight is delayed",
                            "update_type": "delay",
                            "locale": "en_US",
                            "pnr_number": "CF23G2",
                            "update_flight_info": {
                                "flight_number": "KL123",
                                "departure_airport": {
                                    "airport_code": "SFO",
                                    "city": "San Francisco",
                                    "terminal": "T4",
                                    "gate": "G8",
                                },
                                "arrival_airport": {
                                    "airport_code": "AMS",
                                    "city": "Amsterdam",
                                    "terminal": "T4",
                                    "gate": "G8",
                                },
                                "flight_schedule": {
                                    "boarding_time": "2015-12-26T10:30",
                                    "departure_time": "2015-12-26T11:30",
                                    "arrival_time": "2015-12-27T07:30",
                                },
                            },
                        },
                    }
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "sender action": {
        "appid": "<app-id>",
        "deliverychannel": "fb",
        "channels": {"OTT-Messaging": {"fb": {"sender_action": "typing_on"}}},
        "destination": [{"psid": ["<psid>"]}],
    },
    "ten quick replies": {
        "appid": "<app-id>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "text": "Customer id check 1",
                    "quick_replies": [
                        {
                            "content_type": "text",
                            "title": "Red",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED",
                        },
                        {
                            "content_type": "text",
                            "title": "Green",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_GREEN",
                        },
                        {
                            "content_type": "text",
                            "title": "Yellow",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_YELLOW",
                        },
                        {
                            "content_type": "text",
                            "title": "Orange",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_ORANGE",
                        },
                        {
                            "content_type": "text",
                            "title": "Pink",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_PINK",
                        },
                        {
                            "content_type": "text",
                            "title": "Brown",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_BROWN",
                        },
                        {
                            "content_type": "text",
                            "title": "Blue",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_BLUE",
                        },
                        {
                            "content_type": "text",
                            "title": "Black",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_BLACK",
                        },
                        {
                            "content_type": "text",
                            "title": "Magenta",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_BLACK",
                        },
                        {
                            "content_type": "text",
                            "title": "Voilate",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_VOILATE",
                        },
                    ],
                    "type": "conversation",
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
    "quick replies with images": {
        "appid": "<app-id>",
        "deliverychannel": "fb",
        "channels": {
            "OTT-Messaging": {
                "fb": {
                    "text": "Customer id check 1",
                    "quick_replies": [
                        {
                            "content_type": "text",
                            "title": "Red",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED",
                            "image_url": "http://www.gstatic.com/webp/gallery/1.jpg",
                        },
                        {
                            "content_type": "text",
                            "title": "Green",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_GREEN",
                            "image_url": "https://www.gstatic.com/webp/gallery3/1.png",
                        },
                        {
                            "content_type": "text",
                            "title": "Yellow",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_YELLOW",
                            "image_url": "https://www.gstatic.com/webp/gallery3/1.png",
                        },
                        {
                            "content_type": "text",
                            "title": "Orange",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_ORANGE",
                            "image_url": "https://www.gstatic.com/webp/gallery3/1.png",
                        },
                        {
                            "content_type": "text",
                            "title": "Pink",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_PINK",
                            "image_url": "https://www.gstatic.com/webp/gallery3/1.png",
                        },
                        {
                            "content_type": "text",
                            "title": "Brown",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_BROWN",
                            "image_url": "https://www.gstatic.com/webp/gallery3/1.png",
                        },
                        {
                            "content_type": "text",
                            "title": "Blue",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_BLUE",
                            "image_url": "https://www.gstatic.com/webp/gallery3/1.png",
                        },
                        {
                            "content_type": "text",
                            "title": "Voilate",
                            "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_VOILATE",
                            "image_url": "https://www.gstatic.com/webp/gallery3/1.png",
                        },
                    ],
                    "type": "conversation",
                }
            }
        },
        "destination": [{"psid": ["<psid>"]}],
    },
}


def fb(name: str) -> dict[str, Any]:
    """The `fb` object of one of the seed's requests."""
    obj: dict[str, Any] = SEED_REQUESTS[name]["channels"]["OTT-Messaging"]["fb"]
    return obj


def payload(name: str) -> dict[str, Any]:
    p: dict[str, Any] = fb(name)["attachment"]["payload"]
    return p


MEDIA = [("image", "png"), ("audio", "mp3"), ("video", "mp4"), ("file", "pdf")]


def media(kind: str, ext: str) -> dict[str, Any]:
    return {"attachment": {"type": kind, "url": f"https://example.com/{kind}.{ext}"}}


def airline(name: str, template_type: str) -> dict[str, Any]:
    """What a deprecated template normalises to: its payload as given, its template_type Graph's name."""
    kept = {**payload(name), "template_type": template_type}
    attachment = {"type": "template", "template_type": template_type, "airline": kept}
    return {"attachment": attachment, "deprecated": True}


def quick(title: str, payload: str, image_url: str | None = None) -> dict[str, Any]:
    reply = {"content_type": "text", "title": title, "payload": payload}
    return reply if image_url is None else {**reply, "image_url": image_url}


COLOURS = ["Red", "Green", "Yellow", "Orange", "Pink", "Brown", "Blue", "Black", "Magenta", "Voilate"]


def colour_replies(names: list[str], image: bool) -> list[dict[str, Any]]:
    out = []
    for k, name in enumerate(names):
        key = "BLACK" if name == "Magenta" else name.upper()  # the seed's Magenta reuses BLACK's payload
        first = "http://www.gstatic.com/webp/gallery/1.jpg"
        url = (first if k == 0 else "https://www.gstatic.com/webp/gallery3/1.png") if image else None
        out.append(quick(name, f"DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_{key}", url))
    return out


VIEW = "https://petersapparel.parseapp.com/view_item?item_id=100"
FLIPKART = payload("generic template")["elements"][1]["buttons"][0]["url"]

SEED_CASES: dict[str, Expected] = {
    "text, tag and quick replies": {
        "text": "Welcome to Webex Connect",
        "quick_replies": colour_replies(["Red", "Green"], image=False),
        "notification_type": "NO_PUSH",
        "messaging_type": "MESSAGE_TAG",
        "tag": "ACCOUNT_UPDATE",
    },
    **{kind: media(kind, ext) for kind, ext in MEDIA},
    "generic template": {
        "attachment": {
            "type": "template",
            "template_type": "generic",
            "elements": [
                {
                    "title": "Classic White T-Shirt",
                    "subtitle": "Soft white cotton t-shirt is back in style",
                    "image_url": "http://petersapparel.parseapp.com/img/item100-thumb.png",
                    "buttons": [
                        {"type": "web_url", "title": "View Item", "url": VIEW},
                        {
                            "type": "web_url",
                            "title": "Buy Item",
                            "url": "https://petersapparel.parseapp.com/buy_item?item_id=100",
                        },
                        {"type": "postback", "title": "Bookmark Item", "payload": "check"},
                    ],
                },
                {
                    "title": "Giordano 60058 Black/Orange Analog Watch - For Men",
                    "subtitle": "Watch Watch",
                    "image_url": "http://img6a.flixcart.com/image/watch/g/q/z/"
                    "60058-black-orange-giordano-400x400-imae7c8rhnp4rfze.jpeg",
                    "buttons": [
                        {"type": "web_url", "title": "View Item", "url": FLIPKART},
                        {
                            "type": "web_url",
                            "title": "Buy Item",
                            "url": "https://petersapparel.parseapp.com/buy_item?item_id=101",
                        },
                        {
                            "type": "postback",
                            "title": "Bookmark Item",
                            "payload": "USER_DEFINED_PAYLOAD_FOR_ITEM101",
                        },
                    ],
                },
            ],
        },
    },
    "button template": {
        "attachment": {
            "type": "template",
            "template_type": "button",
            "text": "",  # the seed's sample sends it empty
            "buttons": [
                {
                    "type": "web_url",
                    "title": "Show location",
                    "url": "https://www.google.co.in/maps/@17.4495157,78.4000172,16z?hl=en",
                },
                {"type": "postback", "title": "Start Chatting", "payload": "1232"},
                {"type": "phone_number", "title": "Call Representative", "payload": "+9177xxxxxxxx"},
            ],
        },
    },
    "receipt template": {
        "attachment": {
            "type": "template",
            "template_type": "receipt",
            "receipt": {
                "recipient_name": "Stephane Crozatier",
                "order_number": "1234444415678902",
                "currency": "USD",
                "payment_method": "Visa 2345",
                "elements": [
                    {
                        "title": "Classic White T-Shirt",
                        "price": 50,
                        "subtitle": "100% Soft and Luxurious Cotton",
                        "quantity": 2,
                        "currency": "USD",
                        "image_url": "http://petersapparel.parseapp.com/img/whiteshirt.png",
                    },
                    {
                        "title": "Classic Gray T-Shirt",
                        "price": 25,
                        "subtitle": "100% Soft and Luxurious Cotton",
                        "quantity": 1,
                        "currency": "USD",
                        "image_url": "http://petersapparel.parseapp.com/img/grayshirt.png",
                    },
                ],
                "summary": {"total_cost": 56.14, "subtotal": 75.0, "shipping_cost": 4.95, "total_tax": 6.19},
                "timestamp": "1428444852",
                "order_url": "http://petersapparel.parseapp.com/order?order_id=123456",
                "address": {  # street_2 is "" in the sample: absent
                    "street_1": "1 Hacker Way",
                    "city": "Menlo Park",
                    "postal_code": "94025",
                    "state": "CA",
                    "country": "US",
                },
                "adjustments": [
                    {"name": "New Customer Discount", "amount": 20},
                    {"name": "$10 Off Coupon", "amount": 10},
                ],
            },
        },
    },
    "airline itinerary (deprecated)": airline("airline itinerary (deprecated)", "airline_itinerary"),
    "airline check-in (deprecated)": airline("airline check-in (deprecated)", "airline_checkin"),
    "airline boarding pass (deprecated)": airline(
        "airline boarding pass (deprecated)", "airline_boardingpass"
    ),
    "airline flight update (deprecated)": airline("airline flight update (deprecated)", "airline_update"),
    "sender action": {"sender_action": "typing_on"},
    "ten quick replies": {
        "text": "Customer id check 1",
        "quick_replies": colour_replies(COLOURS, image=False),
    },
    "quick replies with images": {
        "text": "Customer id check 1",
        "quick_replies": colour_replies(
            ["Red", "Green", "Yellow", "Orange", "Pink", "Brown", "Blue", "Voilate"], image=True
        ),
    },
}

# --- everything else, one change at a time ---------------------------------------------------------------

TEXT = {"text": "hi"}
TEXT_OUT = {"text": "hi"}
QR = {"content_type": "text", "title": "Red", "payload": "RED"}
IMAGE = {"type": "image", "payload": {"url": "https://example.com/a.png"}}
WEB = {"type": "web_url", "title": "View", "url": "https://example.com/v"}
POSTBACK = {"type": "postback", "title": "Start", "payload": "START"}
ELEMENT = {"title": "Shirt", "buttons": [WEB]}
RECEIPT = payload("receipt template")
ITINERARY = payload("airline itinerary (deprecated)")
RECEIPT_OUT = SEED_CASES["receipt template"]["attachment"]["receipt"]  # type: ignore[index]


def template(**fields: Any) -> dict[str, Any]:
    return {"attachment": {"type": "template", "payload": fields}}


def with_replies(*replies: dict[str, Any]) -> dict[str, Any]:
    return {**TEXT, "quick_replies": list(replies)}


def receipt(**changes: Any) -> dict[str, Any]:
    return template(**{**RECEIPT, **changes})


def button_template(*buttons: dict[str, Any], text: str = "Pick") -> dict[str, Any]:
    return template(template_type="button", text=text, buttons=list(buttons))


def out_media(**fields: Any) -> dict[str, Any]:
    return {"attachment": {"type": "image", **fields}}


OTHER_CASES: dict[str, Expected] = {
    # one of text, attachment, sender_action
    "empty object": missing("text|attachment|sender_action"),
    "empty text": missing("text|attachment|sender_action"),
    "not an object": Refused("7004", f"{FIELD}: expected `object`, got `array`"),
    "text not a string": invalid("text: expected `str`, got `int`"),
    "text of 2000 characters": {"text": "x" * 2000},
    "text of 2001 characters": invalid("text is longer than 2000"),
    "text and attachment": invalid("attachment cannot be sent with text"),
    # sender_action
    "markseen": {"sender_action": "mark_seen"},
    "mark_seen": {"sender_action": "mark_seen"},
    "typing_off in upper case": {"sender_action": "typing_off"},
    "unknown sender_action": invalid("sender_action 'wave'"),
    "sender_action with text": invalid("sender_action is a request of its own: it cannot carry text"),
    "sender_action with quick replies": invalid(
        "sender_action is a request of its own: it cannot carry quick_replies"
    ),
    # messaging_type, tag, notification_type
    "UPDATE": {**TEXT_OUT, "messaging_type": "UPDATE"},
    "MESSAGE_TAG without tag": missing("tag (messaging_type MESSAGE_TAG needs one)"),
    "unknown messaging_type": invalid("messaging_type 'PROMOTION'"),
    "tag without MESSAGE_TAG": invalid("tag is only for messaging_type MESSAGE_TAG"),
    "retired tag": invalid("tag 'SHIPPING_UPDATE'"),
    "every tag": {**TEXT_OUT, "messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"},
    "SILENT_PUSH": {**TEXT_OUT, "notification_type": "SILENT_PUSH"},
    "regular, lower case": {**TEXT_OUT, "notification_type": "REGULAR"},
    "unknown notification_type": invalid("notification_type 'LOUD'"),
    # quick replies
    "quick replies not a list": invalid("quick_replies: expected `array`"),
    "eleven quick replies": invalid("quick_replies has 11 entries; at most 10"),
    "quick reply title of 20": {**TEXT_OUT, "quick_replies": [{**QR, "title": "t" * 20}]},
    "quick reply title of 21": invalid("quick_replies[0].title is longer than 20"),
    "quick reply payload of 1001": invalid("quick_replies[1].payload is longer than 1000"),
    "quick reply without title": missing("quick_replies[0].title"),
    "quick reply without payload": missing("quick_replies[0].payload"),
    "quick reply without content_type": missing("quick_replies[0].content_type"),
    "quick reply content_type emoji": invalid("quick_replies[0].content_type 'emoji'"),
    "location quick reply": {**TEXT_OUT, "quick_replies": [{"content_type": "location"}]},
    "quick reply image not http": invalid("quick_replies[0].image_url must be an absolute http(s) URL"),
    # media attachments
    "attachment without type": missing("attachment.type"),
    "attachment type sticker": invalid("attachment.type 'sticker'"),
    "attachment without payload": missing("attachment.payload"),
    "attachment payload not an object": invalid("attachment.payload: expected `object`, got `str`"),
    "image without url": missing("attachment.payload.url"),
    "image url not a URL": invalid("attachment.payload.url must be an absolute http(s) URL"),
    "image by attachment_id": out_media(attachment_id="1857777774821032"),
    "image by numeric attachment_id": out_media(attachment_id="1857777774821032"),
    "image with url and attachment_id": invalid("attachment.payload.attachment_id cannot be sent with url"),
    "image reusable as a string": out_media(url="https://example.com/a.png", is_reusable=True),
    "image reusable maybe": invalid("attachment.payload.is_reusable must be true or false"),
    # templates
    "template without template_type": missing("attachment.payload.template_type"),
    "template_type media": invalid("attachment.payload.template_type 'media'"),
    "generic without elements": missing("attachment.payload.elements"),
    "generic elements not a list": invalid("attachment.payload.elements: expected `array`, got `str`"),
    "generic of 10 elements": {
        "attachment": {"type": "template", "template_type": "generic", "elements": [{"title": "Shirt"}] * 10},
    },
    "generic of 11 elements": invalid("attachment.payload.elements has 11 entries; at most 10"),
    "element title of 81": invalid("attachment.payload.elements[0].title is longer than 80"),
    "element subtitle of 81": invalid("attachment.payload.elements[0].subtitle is longer than 80"),
    "element without title": missing("attachment.payload.elements[1].title"),
    "element with 4 buttons": invalid("attachment.payload.elements[0].buttons has 4 entries; at most 3"),
    "element item_url not a URL": invalid("attachment.payload.elements[0].item_url must be an absolute"),
    "web_url button without url": missing("attachment.payload.elements[0].buttons[0].url"),
    "button type account_link": invalid("attachment.payload.buttons[0].type 'account_link'"),
    "button title of 21": invalid("attachment.payload.buttons[0].title is longer than 20"),
    "button without title": missing("attachment.payload.buttons[0].title"),
    "button template without text": missing("attachment.payload.text"),
    "button template text of 641": invalid("attachment.payload.text is longer than 640"),
    "button template without buttons": missing("attachment.payload.buttons"),
    "button template with 4 buttons": invalid("attachment.payload.buttons has 4 entries; at most 3"),
    "postback without payload": missing("attachment.payload.buttons[1].payload"),
    "phone number without +": invalid("attachment.payload.buttons[0].payload must be a phone number"),
    "receipt without recipient_name": missing("attachment.payload.recipient_name"),
    "receipt without elements": missing("attachment.payload.elements"),
    "receipt without summary": missing("attachment.payload.summary"),
    "receipt without total_cost": missing("attachment.payload.summary.total_cost"),
    "receipt element without price": missing("attachment.payload.elements[0].price"),
    "receipt price not a number": invalid("attachment.payload.elements[1].price 'fifty' is not a number"),
    "receipt quantity 1.5": invalid("attachment.payload.elements[0].quantity: expected `int | str`"),
    "receipt quantity '1.5'": invalid("attachment.payload.elements[0].quantity must be a whole number"),
    "receipt price as a string": {
        "attachment": {
            "type": "template",
            "template_type": "receipt",
            "receipt": {
                **RECEIPT_OUT,
                "elements": [{"title": "Shirt", "price": 50}, {"title": "Tie", "price": 9.5}],
            },
        }
    },
    "receipt address without city": missing("attachment.payload.address.city"),
    "receipt order_url not a URL": invalid("attachment.payload.order_url must be an absolute"),
    "airline_flight_update is airline_update": {
        "attachment": {
            "type": "template",
            "template_type": "airline_update",
            "airline": {**payload("airline flight update (deprecated)"), "template_type": "airline_update"},
        },
        "deprecated": True,
    },
    "itinerary without pnr_number": missing("attachment.payload.pnr_number"),
    "boarding pass without boarding_pass": missing("attachment.payload.boarding_pass"),
}

GIVEN: dict[str, Any] = {
    "empty object": {},
    "empty text": {"text": ""},
    "not an object": b'["text"]',
    "text not a string": {"text": 5},
    "text of 2000 characters": {"text": "x" * 2000},
    "text of 2001 characters": {"text": "x" * 2001},
    "text and attachment": {**TEXT, "attachment": IMAGE},
    "markseen": {"sender_action": "markseen"},
    "mark_seen": {"sender_action": "mark_seen"},
    "typing_off in upper case": {"sender_action": "TYPING_OFF"},
    "unknown sender_action": {"sender_action": "wave"},
    "sender_action with text": {"sender_action": "typing_on", **TEXT},
    "sender_action with quick replies": {"sender_action": "typing_on", "quick_replies": [QR]},
    "UPDATE": {**TEXT, "messaging_type": "UPDATE"},
    "MESSAGE_TAG without tag": {**TEXT, "messaging_type": "MESSAGE_TAG"},
    "unknown messaging_type": {**TEXT, "messaging_type": "PROMOTION"},
    "tag without MESSAGE_TAG": {**TEXT, "messaging_type": "RESPONSE", "tag": "ACCOUNT_UPDATE"},
    "retired tag": {**TEXT, "messaging_type": "MESSAGE_TAG", "tag": "SHIPPING_UPDATE"},
    "every tag": {**TEXT, "messaging_type": "message_tag", "tag": "human_agent"},
    "SILENT_PUSH": {**TEXT, "notification_type": "SILENT_PUSH"},
    "regular, lower case": {**TEXT, "notification_type": "regular"},
    "unknown notification_type": {**TEXT, "notification_type": "LOUD"},
    "quick replies not a list": {**TEXT, "quick_replies": "Red"},
    "eleven quick replies": with_replies(*[QR] * 11),
    "quick reply title of 20": with_replies({**QR, "title": "t" * 20}),
    "quick reply title of 21": with_replies({**QR, "title": "t" * 21}),
    "quick reply payload of 1001": with_replies(QR, {**QR, "payload": "p" * 1001}),
    "quick reply without title": with_replies({"content_type": "text", "payload": "RED"}),
    "quick reply without payload": with_replies({"content_type": "text", "title": "Red"}),
    "quick reply without content_type": with_replies({"title": "Red", "payload": "RED"}),
    "quick reply content_type emoji": with_replies({**QR, "content_type": "emoji"}),
    "location quick reply": with_replies({"content_type": "location"}),
    "quick reply image not http": with_replies({**QR, "image_url": "ftp://example.com/a.png"}),
    "attachment without type": {"attachment": {"payload": {"url": "https://example.com/a.png"}}},
    "attachment type sticker": {"attachment": {**IMAGE, "type": "sticker"}},
    "attachment without payload": {"attachment": {"type": "image"}},
    "attachment payload not an object": {"attachment": {"type": "image", "payload": "https://example.com"}},
    "image without url": {"attachment": {"type": "image", "payload": {"is_reusable": True}}},
    "image url not a URL": {"attachment": {"type": "image", "payload": {"url": "<image-url>"}}},
    "image by attachment_id": {
        "attachment": {"type": "image", "payload": {"attachment_id": "1857777774821032"}}
    },
    "image by numeric attachment_id": {
        "attachment": {"type": "image", "payload": {"attachment_id": 1857777774821032}}
    },
    "image with url and attachment_id": {
        "attachment": {"type": "image", "payload": {"url": "https://example.com/a.png", "attachment_id": "1"}}
    },
    "image reusable as a string": {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://example.com/a.png", "is_reusable": "true"},
        }
    },
    "image reusable maybe": {
        "attachment": {
            "type": "image",
            "payload": {"url": "https://example.com/a.png", "is_reusable": "maybe"},
        }
    },
    "template without template_type": template(elements=[ELEMENT]),
    "template_type media": template(template_type="media", elements=[ELEMENT]),
    "generic without elements": template(template_type="generic"),
    "generic elements not a list": template(template_type="generic", elements="Shirt"),
    "generic of 10 elements": template(template_type="generic", elements=[{"title": "Shirt"}] * 10),
    "generic of 11 elements": template(template_type="generic", elements=[{"title": "Shirt"}] * 11),
    "element title of 81": template(template_type="generic", elements=[{"title": "t" * 81}]),
    "element subtitle of 81": template(
        template_type="generic", elements=[{"title": "t", "subtitle": "s" * 81}]
    ),
    "element without title": template(template_type="generic", elements=[ELEMENT, {"subtitle": "no title"}]),
    "element with 4 buttons": template(
        template_type="generic", elements=[{"title": "t", "buttons": [WEB] * 4}]
    ),
    "element item_url not a URL": template(
        template_type="generic", elements=[{"title": "t", "item_url": "shop"}]
    ),
    "web_url button without url": template(
        template_type="generic", elements=[{"title": "t", "buttons": [{"type": "web_url", "title": "View"}]}]
    ),
    "button type account_link": button_template({**WEB, "type": "account_link"}),
    "button title of 21": button_template({**WEB, "title": "t" * 21}),
    "button without title": button_template({"type": "postback", "payload": "P"}),
    "button template without text": template(template_type="button", buttons=[WEB]),
    "button template text of 641": button_template(WEB, text="t" * 641),
    "button template without buttons": template(template_type="button", text="Pick"),
    "button template with 4 buttons": button_template(WEB, WEB, POSTBACK, POSTBACK),
    "postback without payload": button_template(WEB, {"type": "postback", "title": "Start"}),
    "phone number without +": button_template(
        {"type": "phone_number", "title": "Call", "payload": "917700000000"}
    ),
    "receipt without recipient_name": receipt(recipient_name=""),
    "receipt without elements": receipt(elements=[]),
    "receipt without summary": receipt(summary=None),
    "receipt without total_cost": receipt(summary={"subtotal": 75.0}),
    "receipt element without price": receipt(elements=[{"title": "Shirt"}]),
    "receipt price not a number": receipt(
        elements=[{"title": "Shirt", "price": "50"}, {"title": "Tie", "price": "fifty"}]
    ),
    "receipt quantity 1.5": receipt(elements=[{"title": "Shirt", "price": 1, "quantity": 1.5}]),
    "receipt quantity '1.5'": receipt(elements=[{"title": "Shirt", "price": 1, "quantity": "1.5"}]),
    "receipt price as a string": receipt(
        elements=[{"title": "Shirt", "price": "50"}, {"title": "Tie", "price": "9.50"}]
    ),
    "receipt address without city": receipt(address={**RECEIPT["address"], "city": ""}),
    "receipt order_url not a URL": receipt(order_url="order 123456"),
    "airline_flight_update is airline_update": template(
        **{**payload("airline flight update (deprecated)"), "template_type": "airline_flight_update"}
    ),
    "itinerary without pnr_number": template(**{**ITINERARY, "pnr_number": ""}),
    "boarding pass without boarding_pass": template(
        **{**payload("airline boarding pass (deprecated)"), "boarding_pass": []}
    ),
}

CASES: dict[str, tuple[Any, Expected]] = {
    **{f"seed: {name}": (fb(name), expected) for name, expected in SEED_CASES.items()},
    **{name: (GIVEN[name], expected) for name, expected in OTHER_CASES.items()},
}


def test_every_seed_sample_and_case_is_in_the_table() -> None:
    assert SEED_CASES.keys() == SEED_REQUESTS.keys()
    assert OTHER_CASES.keys() == GIVEN.keys()


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=CASES.keys())
def test_fb_object(given: Any, expected: Expected) -> None:
    raw = given if isinstance(given, bytes) else json.dumps(given).encode()
    if isinstance(expected, Refused):
        with pytest.raises(ApiError) as refused:
            decode_messenger(raw, FIELD)
        assert (refused.value.code, expected.words) == (expected.code, expected.words)
        assert expected.words in refused.value.description
        return
    content = decode_messenger(raw, FIELD)
    shown = msgspec.to_builtins(content)
    if content.deprecated:
        shown["deprecated"] = True
    assert shown == expected
    # What is stored is what the connector decodes again.
    assert msgspec.json.decode(msgspec.json.encode(content), type=MessengerContent) == content


# --- Graph's Send API body, per type ---------------------------------------------------------------------

PSID = "24483984711234567"


def body_of(fb_object: dict[str, Any]) -> dict[str, Any]:
    return send_api_body(decode_messenger(json.dumps(fb_object).encode(), FIELD), PSID)


def message_body(message: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", **top, "message": message}


GOLDEN: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text with tag and quick replies": (
        fb("text, tag and quick replies"),
        {
            "recipient": {"id": PSID},
            "messaging_type": "MESSAGE_TAG",
            "tag": "ACCOUNT_UPDATE",
            "notification_type": "NO_PUSH",
            "message": {
                "text": "Welcome to Webex Connect",
                "quick_replies": [
                    {
                        "content_type": "text",
                        "title": "Red",
                        "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_RED",
                    },
                    {
                        "content_type": "text",
                        "title": "Green",
                        "payload": "DEVELOPER_DEFINED_PAYLOAD_FOR_PICKING_GREEN",
                    },
                ],
            },
        },
    ),
    "location and image quick replies": (
        {
            "text": "Where?",
            "quick_replies": [{"content_type": "location"}, {**QR, "image_url": "https://example.com/r.png"}],
        },
        message_body(
            {
                "text": "Where?",
                "quick_replies": [
                    {"content_type": "location"},
                    {
                        "content_type": "text",
                        "title": "Red",
                        "payload": "RED",
                        "image_url": "https://example.com/r.png",
                    },
                ],
            }
        ),
    ),
    "image by url, reusable": (
        {
            "attachment": {
                "type": "image",
                "payload": {"url": "https://example.com/a.png", "is_reusable": True},
            }
        },
        message_body(
            {
                "attachment": {
                    "type": "image",
                    "payload": {"url": "https://example.com/a.png", "is_reusable": True},
                }
            }
        ),
    ),
    "file by attachment_id": (
        {"attachment": {"type": "file", "payload": {"attachment_id": 1857777774821032}}},
        message_body({"attachment": {"type": "file", "payload": {"attachment_id": "1857777774821032"}}}),
    ),
    "generic with item_url": (
        template(
            template_type="generic",
            elements=[
                {
                    "title": "Shirt",
                    "subtitle": "Cotton",
                    "item_url": "https://example.com/shirt",
                    "image_url": "https://example.com/shirt.png",
                    "buttons": [WEB, POSTBACK],
                }
            ],
        ),
        message_body(
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "generic",
                        "elements": [
                            {
                                "title": "Shirt",
                                "subtitle": "Cotton",
                                "image_url": "https://example.com/shirt.png",
                                "default_action": {"type": "web_url", "url": "https://example.com/shirt"},
                                "buttons": [
                                    {"type": "web_url", "title": "View", "url": "https://example.com/v"},
                                    {"type": "postback", "title": "Start", "payload": "START"},
                                ],
                            }
                        ],
                    },
                }
            }
        ),
    ),
    "button template": (
        button_template(
            WEB, {"type": "phone_number", "title": "Call", "payload": "+447700900123"}, text="Pick one"
        ),
        message_body(
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": "Pick one",
                        "buttons": [
                            {"type": "web_url", "title": "View", "url": "https://example.com/v"},
                            {"type": "phone_number", "title": "Call", "payload": "+447700900123"},
                        ],
                    },
                }
            }
        ),
    ),
    "receipt": (
        fb("receipt template"),
        message_body(
            {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "receipt",
                        "recipient_name": "Stephane Crozatier",
                        "order_number": "1234444415678902",
                        "currency": "USD",
                        "payment_method": "Visa 2345",
                        "elements": [
                            {
                                "title": "Classic White T-Shirt",
                                "price": 50,
                                "subtitle": "100% Soft and Luxurious Cotton",
                                "quantity": 2,
                                "currency": "USD",
                                "image_url": "http://petersapparel.parseapp.com/img/whiteshirt.png",
                            },
                            {
                                "title": "Classic Gray T-Shirt",
                                "price": 25,
                                "subtitle": "100% Soft and Luxurious Cotton",
                                "quantity": 1,
                                "currency": "USD",
                                "image_url": "http://petersapparel.parseapp.com/img/grayshirt.png",
                            },
                        ],
                        "summary": {
                            "total_cost": 56.14,
                            "subtotal": 75.0,
                            "shipping_cost": 4.95,
                            "total_tax": 6.19,
                        },
                        "timestamp": "1428444852",
                        "order_url": "http://petersapparel.parseapp.com/order?order_id=123456",
                        "address": {
                            "street_1": "1 Hacker Way",
                            "city": "Menlo Park",
                            "postal_code": "94025",
                            "state": "CA",
                            "country": "US",
                        },
                        "adjustments": [
                            {"name": "New Customer Discount", "amount": 20},
                            {"name": "$10 Off Coupon", "amount": 10},
                        ],
                    },
                }
            }
        ),
    ),
    "airline update (deprecated, as given)": (
        fb("airline flight update (deprecated)"),
        message_body(
            {"attachment": {"type": "template", "payload": payload("airline flight update (deprecated)")}}
        ),
    ),
    "sender action alone": (
        {"sender_action": "markseen"},
        {"recipient": {"id": PSID}, "sender_action": "mark_seen"},
    ),
    "silent update": (
        {"text": "Shipped", "messaging_type": "UPDATE", "notification_type": "SILENT_PUSH"},
        {
            "recipient": {"id": PSID},
            "messaging_type": "UPDATE",
            "notification_type": "SILENT_PUSH",
            "message": {"text": "Shipped"},
        },
    ),
}


@pytest.mark.parametrize(("fb_object", "golden"), GOLDEN.values(), ids=GOLDEN.keys())
def test_send_api_body(fb_object: dict[str, Any], golden: dict[str, Any]) -> None:
    body = body_of(fb_object)
    assert body == golden
    assert json.loads(json.dumps(body)) == golden  # plain JSON, nothing a Struct left behind


# --- Graph errors onto Webex Connect's Messenger codes ---------------------------------------------------

LOOKUPS: dict[str, tuple[tuple[int, int | None], str, bool]] = {
    "1200 retried": ((1200, None), codes.PROVIDER_ERROR, True),
    "2 retried": ((2, None), codes.PROVIDER_ERROR, True),
    "613 retried": ((613, None), codes.PROVIDER_ERROR, True),
    "4/2018022 retried": ((4, 2018022), codes.PROVIDER_ERROR, True),
    "551/1545041 final": ((551, 1545041), codes.UNREACHABLE, False),
    "100/2018001 final": ((100, 2018001), codes.UNREACHABLE, False),
    "10/2018278 outside the window": ((10, 2018278), codes.OUTSIDE_WINDOW, False),
    "10/2018065 outside the window": ((10, 2018065), codes.OUTSIDE_WINDOW, False),
    "10/2018108 permission": ((10, 2018108), codes.TAG_NOT_ALLOWED, False),
    "190 with a subcode falls back to 190": ((190, 463), codes.PROVIDER_ERROR, False),
    "a privacy subcode under another code": ((200, 2018336), codes.EU_PRIVACY, False),
    "an unknown code": ((12345, None), codes.PROVIDER_ERROR, False),
}


@pytest.mark.parametrize(("given", "code", "retryable"), LOOKUPS.values(), ids=LOOKUPS.keys())
def test_graph_error(given: tuple[int, int | None], code: str, retryable: bool) -> None:
    _, (mapped, retried, description) = codes.graph_error(*given)
    assert (mapped, retried) == (code, retryable)
    assert description.startswith("Graph: ")


def test_graph_error_table_is_consistent() -> None:
    for key, (code, retryable, _) in codes.GRAPH_ERRORS.items():
        assert code in codes.MESSENGER_FAILURES, key
        assert retryable == (key in codes.THROTTLING or key in RETRIED), key
    for group in (codes.THROTTLING, codes.CONFIGURATION, codes.GONE):
        assert group <= codes.GRAPH_ERRORS.keys()
    assert codes.graph_error(190, None)[0] in codes.CONFIGURATION  # the bad page token: final and loud
    assert codes.graph_error(100, 2018001)[0] in codes.GONE
    assert codes.MESSENGER_FAILURES[codes.EXPIRED].status is Status.EXPIRED
    assert codes.DEPRECATED_TEMPLATE in codes.MESSENGER_FAILURES


RETRIED = {(1, None), (2, None), (1200, None)}  # retried at once, each retry an attempt
