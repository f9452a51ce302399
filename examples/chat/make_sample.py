#!/usr/bin/env python3
"""make_sample.py: generates examples/chat/sample.csv, the demo corpus of the lstm-* tools.

The corpus is SYNTHETIC: every conversation is made up by this script from the templates below
(per-domain dialogue turns with slots and several paraphrases each). No text is taken from any
other data set. It is part of this project and is distributed under the project's terms (see
examples/chat/LICENSE-DATA).

Regenerate it (deterministic: fixed seed, Python 3 standard library only) with

    python3 examples/chat/make_sample.py > examples/chat/sample.csv

Options: --seed N (default 20240611), --count N conversations (default 600).

Output: CSV (RFC 4180 quoting, LF line ends, UTF-8) with the header conversation_id,speaker,text;
speaker is exactly "user" or "agent"; every conversation starts with the user, alternates, has
3 to 10 turns and contains both speakers; no two conversations are identical. The script checks
these properties itself before writing anything.

Template syntax: "[a|b|]" picks one alternative (possibly empty; may be nested), "{slot}" is filled
from the conversation's slots (products, order numbers, dates, ...). User turns then go through a
per-conversation writing style (all lowercase, properly capitalised, or sloppy with "u", "pls",
"thx") and occasional typos, as in real chat.
"""
import argparse
import csv
import random
import re
import sys

# ---------------------------------------------------------------------------------------------
# Slot vocabularies
# ---------------------------------------------------------------------------------------------

FIRST_NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Farid", "Grace", "Hugo", "Irene", "Jamal",
               "Kate", "Leo", "Maria", "Nina", "Omar", "Paula", "Quinn", "Rosa", "Sam", "Tariq",
               "Uma", "Victor", "Wendy", "Yusuf", "Zoe", "Lucas", "Priya", "Mei", "Tom", "Sofia",
               "Daniel", "Aisha", "Marco", "Julia", "Kenji", "Laura", "Noah", "Elena", "Raj", "Chloe"]
LAST_NAMES = ["Smith", "Garcia", "Nguyen", "Muller", "Rossi", "Kowalski", "Patel", "Okafor", "Silva",
              "Jensen", "Brown", "Martin", "Lopez", "Kim", "Novak", "Haddad", "Murphy", "Sato",
              "Fischer", "Dubois", "Ahmed", "Costa", "Walsh", "Berg", "Moreau", "Khan", "Lee"]
AGENT_NAMES = ["Sam", "Priya", "Lucas", "Jess", "Alex", "Marta", "Tom", "Nadia", "Chris", "Elif",
               "Ryan", "Hana", "Diego", "Olivia", "Max", "Leila", "Ben", "Sara", "Jonas", "Amy"]
COMPANIES = ["Brightline", "Nordhaven", "Parcelo", "Kettle & Co", "Stellar Home", "Bluefin",
             "Maple Mobile", "Orbit Fiber", "Tidy Threads", "Northpeak", "Lumo", "Cobalt Travel"]
MAIL_DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "mail.com",
                "proton.me", "gmx.net"]

PRODUCTS = ["wireless headphones", "coffee maker", "running shoes", "phone case", "desk lamp",
            "winter jacket", "blender", "yoga mat", "backpack", "smart watch", "bluetooth speaker",
            "laptop stand", "kettle", "air fryer", "office chair", "rain jacket", "sneakers",
            "water bottle", "hoodie", "jeans", "bed sheets", "throw pillow", "frying pan",
            "toaster", "electric toothbrush", "hair dryer", "gaming mouse", "keyboard", "monitor",
            "phone charger", "usb cable", "tablet cover", "sunglasses", "wallet", "watch strap",
            "kids bike helmet", "board game", "dinner set", "vacuum cleaner", "standing fan",
            "denim shirt", "leather boots", "dress", "t-shirt", "scarf", "duvet", "lamp shade",
            "camping tent", "sleeping bag", "garden hose", "baby stroller", "printer ink",
            "webcam", "microphone", "ring light", "mattress topper", "bath towels", "rug"]
DEVICE_PRODUCTS = ["headphones", "smart watch", "coffee machine", "vacuum cleaner", "blender",
                   "bluetooth speaker", "air fryer", "electric kettle", "tablet", "laptop",
                   "phone", "tv", "monitor", "printer", "robot vacuum", "fitness tracker",
                   "e-reader", "hair straightener", "microwave", "washing machine", "dishwasher",
                   "router", "camera", "game controller", "electric scooter", "toaster"]
PHONES = ["iphone 13", "iphone 14", "iphone 12", "iphone se", "pixel 7", "pixel 6",
          "galaxy s22", "galaxy s21", "galaxy a53", "oneplus 10", "xiaomi redmi note 11",
          "ipad", "ipad air", "samsung tablet", "windows laptop", "macbook", "motorola g52"]
APP_ACTIONS = ["upload a photo", "open my messages", "log in", "check out", "open the settings",
               "play a video", "add something to my cart", "open my profile", "send a message",
               "view my orders", "scan a receipt", "start a workout", "pay", "share a file"]
BILLED = ["subscription", "order", "monthly plan", "membership", "last payment", "booking",
          "phone bill", "internet bill", "annual plan", "renewal", "last order", "ticket"]
PLANS = ["basic", "standard", "premium", "family", "pro", "student", "plus", "starter"]
BOOKINGS = ["hotel room", "table for two", "flight", "appointment", "car rental", "yoga class",
            "haircut appointment", "city tour", "dinner reservation", "room for 3 nights",
            "dentist appointment", "train ticket", "spa appointment", "cooking class",
            "table for four", "massage", "airport shuttle", "campsite", "concert tickets"]
DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
REL_DAYS = ["yesterday", "two days ago", "last week", "on monday", "on friday", "last tuesday",
            "a week ago", "three days ago", "over the weekend", "this morning"]
TIMES = ["9am", "10:30", "11am", "noon", "1pm", "2:30pm", "3pm", "4pm", "5:15pm", "6pm",
         "7pm", "8:30pm"]
TIME_WINDOWS = ["8am and noon", "9am and 1pm", "noon and 4pm", "1pm and 5pm", "2pm and 6pm"]
STREETS = ["Oak Street", "Maple Avenue", "Station Road", "Park Lane", "High Street", "Elm Road",
           "Church Street", "River Drive", "Hill Crescent", "Mill Lane", "Cedar Court",
           "Victoria Road", "King Street", "Harbour View", "Lake Road", "Orchard Way"]
CITIES = ["Springfield", "Riverton", "Lakeside", "Bristol", "Leeds", "Dublin", "Austin", "Denver",
          "Portland", "Manchester", "Toronto", "Melbourne", "Glasgow", "Cork", "Boston", "Seattle"]
COLORS = ["black", "white", "blue", "red", "green", "grey", "pink", "beige", "navy"]
SIZES = ["small", "medium", "large", "xl", "size 8", "size 10", "size 42", "size 38"]
DELAY_PLACES = ["the sorting center", "the local depot", "customs", "the courier's warehouse",
                "the distribution hub"]


def money(rng):
    """A price in one of three currencies and two formats."""
    units = rng.choice([5, 9, 12, 15, 19, 24, 29, 35, 39, 49, 59, 79, 89, 99, 129, 149, 199])
    cents = rng.choice(["99", "00", "50", "95", "49"])
    cur = rng.choice(["$", "$", "$", "€", "£"])
    return f"{cur}{units}.{cents}"


def order_number(rng):
    style = rng.randrange(5)
    if style == 0:
        return f"#{rng.randint(10000, 99999)}"
    if style == 1:
        return f"{rng.randint(100, 999)}-{rng.randint(1000000, 9999999)}"
    if style == 2:
        return f"ORD{rng.randint(100000, 999999)}"
    if style == 3:
        return f"A{rng.randint(1000000, 9999999)}"
    return str(rng.randint(1000000, 9999999))


def booking_ref(rng):
    letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(rng.choice(letters + "23456789") for _ in range(6))


def make_slots(rng):
    """Every slot a template may use, drawn fresh for each conversation."""
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    user = rng.choice([first.lower(), first.lower() + "." + last.lower(), first[0].lower() + last.lower()])
    email = user + rng.choice(["", "", str(rng.randint(1, 99)), str(rng.randint(1970, 2005))]) \
        + "@" + rng.choice(MAIL_DOMAINS)
    at = email.index("@")
    products = rng.sample(PRODUCTS, 2)
    plans = rng.sample(PLANS, 2)
    days = rng.sample(DAYS, 3)
    street_no = rng.randint(1, 240)
    day_of_month = rng.randint(1, 28)
    month = rng.choice(MONTHS)
    return {
        "first": first, "last": last, "fullname": f"{first} {last}", "username": user,
        "email": email, "email_masked": email[0] + "***" + email[at - 1:],
        "agent": rng.choice(AGENT_NAMES), "company": rng.choice(COMPANIES),
        "product": products[0], "product2": products[1],
        "device_prod": rng.choice(DEVICE_PRODUCTS), "device": rng.choice(PHONES),
        "action": rng.choice(APP_ACTIONS), "billed": rng.choice(BILLED),
        "plan": plans[0], "plan2": plans[1], "bthing": rng.choice(BOOKINGS),
        "order": order_number(rng), "ref": booking_ref(rng),
        "case": f"{rng.choice(['CS', 'TK', 'REQ', ''])}{rng.randint(100000, 999999)}",
        "serial": "SN" + "".join(rng.choice("0123456789ABCDEFX") for _ in range(9)),
        "acct": str(rng.randint(10000000, 99999999)), "card": f"{rng.randint(0, 9999):04d}",
        "amount": money(rng), "fee": money(rng), "amount2": money(rng),
        "day": days[0], "day2": days[1], "day3": days[2], "relday": rng.choice(REL_DAYS),
        "date": f"{month} {day_of_month}", "month": month, "time": rng.choice(TIMES),
        "window": rng.choice(TIME_WINDOWS), "city": rng.choice(CITIES),
        "address": f"{street_no} {rng.choice(STREETS)}, {rng.choice(CITIES)}",
        "color": rng.choice(COLORS), "size": rng.choice(SIZES),
        "ver": f"{rng.randint(3, 9)}.{rng.randint(0, 12)}.{rng.randint(0, 9)}",
        "n": str(rng.choice([2, 3, 4, 5, 6, 8, 10])), "place": rng.choice(DELAY_PLACES),
        "months": str(rng.choice([2, 3, 4, 5, 7, 9, 11, 14])),
    }


# ---------------------------------------------------------------------------------------------
# Template expansion and user writing styles
# ---------------------------------------------------------------------------------------------

ALT = re.compile(r"\[([^\[\]]*)\]")


def expand(rng, template, slots):
    """Resolves [a|b] alternatives (innermost first), then {slots}; tidies spaces."""
    if isinstance(template, (list, tuple)):
        template = rng.choice(template)
    text = template
    while True:
        m = ALT.search(text)
        if not m:
            break
        text = text[:m.start()] + rng.choice(m.group(1).split("|")) + text[m.end():]
    text = text.format_map(slots)
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,.!?])", r"\1", text)
    return text


CALENDAR = re.compile(r"\b(" + "|".join(DAYS + [m for m in MONTHS if m != "may"]) + r"|may(?= \d))\b")


def calendar_caps(text):
    return CALENDAR.sub(lambda m: m.group(1).capitalize(), text)


def capitalise(text):
    """Sentence-initial capitals, the pronoun I, days and months, for users who type carefully."""
    text = calendar_caps(text)
    text = re.sub(r"\bi(?=('m|'ve|'d|'ll)?\b)", "I", text)
    text = re.sub(r"(^|[.!?] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), text)
    return text


SLOPPY = [(r"\byou\b", "u"), (r"\bplease\b", "pls"), (r"\bthanks\b", "thx"), (r"\bi'm\b", "im"),
          (r"\bdon't\b", "dont"), (r"\bcan't\b", "cant"), (r"\bit's\b", "its"),
          (r"\bdidn't\b", "didnt"), (r"\bokay\b", "ok"), (r"\byour\b", "ur"),
          (r"\bwhat's\b", "whats"), (r"\bhaven't\b", "havent")]


def typo(rng, text):
    """One realistic typo in a random longer word (swap, drop or double a letter)."""
    words = text.split(" ")
    cands = [i for i, w in enumerate(words) if len(w) > 4 and w.isalpha()]
    if not cands:
        return text
    i = rng.choice(cands)
    w = words[i]
    k = rng.randrange(1, len(w) - 1)
    op = rng.randrange(3)
    if op == 0:
        w = w[:k] + w[k + 1] + w[k] + w[k + 2:]
    elif op == 1:
        w = w[:k] + w[k + 1:]
    else:
        w = w[:k] + w[k] + w[k:]
    words[i] = w
    return " ".join(words)


def user_style(rng, style, text):
    if style == "proper":
        text = capitalise(text)
    elif style == "sloppy":
        for pat, rep in SLOPPY:
            if rng.random() < 0.7:
                text = re.sub(pat, rep, text)
        if text.endswith(".") and not text.endswith("..."):
            text = text[:-1]
        text = text.lower()
    else:
        text = text.lower()
        if rng.random() < 0.25 and text.endswith(".") and not text.endswith("..."):
            text = text[:-1]
    if rng.random() < (0.12 if style == "sloppy" else 0.06):
        text = typo(rng, text)
    return text


# ---------------------------------------------------------------------------------------------
# Shared turns
# ---------------------------------------------------------------------------------------------

GREET_USER = ["hi", "hello", "hey", "hi there", "hello?", "hi, is anyone there?", "good morning",
              "hey there", "hi!", "hello, i have a question", "good afternoon", "hiya", "hi :)"]
GREET_AGENT = [
    "Hi there! Thanks for contacting {company} support. How can I help you today?",
    "Hello! This is {agent}. What can I do for you today?",
    "Hi! I'm {agent} from {company}. How can I help?",
    "Good to hear from you! How can I help you today?",
    "Hi, thanks for reaching out! What can I help you with?",
    "Hello and welcome to {company} support. How can I help you?",
    "Hi! You're chatting with {agent}. What can I do for you?",
]
HELLO_PREFIX = ["Hi, this is {agent}. ", "Hello, {agent} here. ", "Hi there! ", "Hi! "]

ACK_PROBLEM = ["I'm sorry to hear that.", "I'm sorry to hear that!", "Oh no, I'm sorry to hear that.",
               "I'm really sorry to hear that.", "Sorry about that!", "I'm sorry about that.",
               "I'm sorry for the trouble.", "I'm sorry to hear that, let me help.",
               "Sorry for the inconvenience!", "I'm sorry to hear that, I can help with that."]
ACK_REQUEST = ["Sure, I can help with that.", "Of course!", "I can help with that.",
               "Happy to help!", "No problem!", "Sure thing!", "Absolutely, I can help with that.",
               "Thanks for reaching out!", "Sure!"]

USER_THANKS = [
    "thank you for your help!", "thank you for your help", "thanks so much!", "thanks a lot",
    "great, thank you for your help", "perfect, thanks!", "ok thank you", "awesome thanks 👍",
    "thank you for the quick reply!", "thank you for sorting that out", "thanks, that's great",
    "thank you so much, you've been really helpful", "that's great, thank you!", "ok great thanks",
    "thank you for your patience", "thank you for helping me with this 🙏", "thanks!! 😊",
    "great, thanks for the help", "brilliant, thank you", "ok, thank you for checking",
    "thank you for your time", "cool thanks", "thank you for the help, have a nice day",
    "thanks, appreciate it", "thank you for fixing it so quickly", "thank you 🙂",
]
AGENT_CLOSE = [
    "You're welcome! Is there anything else I can help you with?",
    "You're welcome! Is there anything else I can do for you today?",
    "Happy to help! Have a great day.", "My pleasure! Have a great day.",
    "Thank you for contacting us, {first}. Have a nice day!",
    "Thank you for your patience. Take care!", "You're very welcome! Have a lovely day 🙂",
    "Thank you for reaching out! Is there anything else I can help with?",
    "Glad I could help! Thank you for choosing {company}.",
    "No problem at all. Thank you for contacting {company} support!",
    "You're welcome! Feel free to message us again if you need anything else.",
    "Anytime! Is there anything else you need help with?",
    "Thank you for your understanding. Have a good one!",
]
USER_DONE = ["no, that's all. thanks!", "no that's everything, thank you", "nope, that's all",
             "that's all for now, thanks", "no thanks, bye!", "no, all good 👍",
             "nothing else, thank you for your help", "no that's it, thanks again"]
AGENT_BYE = ["Have a great day!", "Great! Have a wonderful day.", "Take care, bye!",
             "Thank you for contacting us. Goodbye!", "Have a nice evening!",
             "Thanks for chatting with us. Bye for now!", "Enjoy the rest of your day!",
             "You too! Take care."]

# Optional second sentence of the user's first problem turn.
USER_EXTRA = ["this is really frustrating", "it's kind of urgent", "i've been trying to sort this out all day",
              "this is the second time this has happened", "i'd really appreciate some help",
              "i tried the help page but it didn't help", "i need it sorted before the weekend",
              "not sure who else to ask", "sorry if this is the wrong place to ask",
              "i already emailed but got no reply", "can someone please help", "thanks in advance"]

GENERIC_FOLLOWUPS = [
    ("will i get an email confirmation?",
     ["Yes, you'll get a confirmation email [in a few minutes|shortly|within the hour].",
      "Yes, a confirmation has been sent to {email_masked}."]),
    ("how long will that take?",
     ["It usually takes [1 to 2|2 to 3|3 to 5] business days.",
      "It should be done [within 24 hours|by {day}|in a couple of days]."]),
    ("[ok, |]is there a reference number for this?",
     ["Yes, your reference number is {case}.", "Of course, your case number is {case}."]),
    ("do i need to do anything else?",
     ["No, you don't need to do anything else. I've taken care of it.",
      "Nothing else is needed on your side."]),
    ("can you send me that in writing?",
     ["Sure, please check your inbox. I've sent you a summary of this chat.",
      "Of course. I've emailed you a summary with the case number {case}."]),
]


# ---------------------------------------------------------------------------------------------
# Domains. Each domain function picks a scenario and returns (core, followups): core is a list
# of turns starting with the user and ending with the agent, each turn a template or a list of
# paraphrases; where the dialogue branches (the user accepts or refuses, a fix works or not),
# pick() chooses one branch so that the turns of a branch stay coherent. followups are optional
# (user question, agent answer) pairs that may be appended after the core.
# ---------------------------------------------------------------------------------------------

def pick(rng, branches):
    """One branch (a list of consecutive turns) out of several."""
    return list(rng.choice(branches))


def sorry(rng):
    return rng.choice(ACK_PROBLEM)


def sure(rng):
    """A friendly opener that can precede a sentence starting with "Sure, please"."""
    return rng.choice([a for a in ACK_REQUEST if not a.startswith("Sure")])


ASK_ORDER = [
    "Sure, please send me your order number and I'll [take a look|check the status|look into it].",
    "Sure, please share your order number [so I can look it up|and I'll check for you].",
    "[Could|Can] you [please |]send me your order number?",
    "Can I have the order number, please?",
    "Sure, please give me your order number and I'll check where it is.",
    "What's the order number? I'll check it right away.",
]
GIVE_ORDER = ["it's {order}", "sure, it's {order}", "order number is {order}", "{order}",
              "here it is: {order}", "ok, it's {order}", "the order number is {order}",
              "yes it's {order}", "one sec... it's {order}", "{order} i think"]


def ask_order(rng):
    return rng.choice(ASK_ORDER)


def orders(rng, s):
    scenario = rng.randrange(4)
    opener = [
        "hi, i need help with my order",
        "hi, i need help with my [order|delivery|package]. it was supposed to arrive {relday} and it's still not here",
        "where is my order? i ordered a {product} {relday} and haven't received it yet",
        "hello, my package hasn't arrived yet[| and the tracking hasn't updated in days]",
        "can you check the status of my order please?",
        "i need help with my delivery, the tracking says it's stuck at {place}",
        "hi, my {product} was supposed to be delivered {relday} but nothing came",
        "hi, i need help with my order. it's really late[|!|...]",
        "my order still hasn't shipped[| and it's been {n} days]. what's going on?",
        "hey, any update on my order? it's been over a week[| 😩|]",
    ]
    if scenario == 0:  # delayed in transit
        core = [opener,
                [sorry(rng) + " " + ask_order(rng), ask_order(rng)],
                GIVE_ORDER,
                ["Thank you! I can see your order {order} is on its way. It was delayed at {place} but it should arrive [by {day}|within 2 business days|tomorrow|early next week].",
                 "Thanks for waiting. Your {product} shipped {relday} and is currently in transit. The new estimated delivery date is {date}.",
                 "Thank you for your patience. Your order is with the courier and is out for delivery [today|tomorrow morning]. You should have it [by this evening|by {time}].",
                 "Thanks! It looks like the carrier had a delay at {place}. Your package is moving again and should arrive by {day}."]]
        follow = [("[ok great, |]can you send me the tracking link?",
                   ["Of course, I've just sent the tracking link to {email_masked}.",
                    "Sure, please check your email. I've sent you the tracking link."]),
                  ("what if it doesn't arrive by then?",
                   ["If it hasn't arrived by {day}, just message us and we'll send a replacement or a refund.",
                    "Then please contact us again and we'll ship a new one right away."])]
    elif scenario == 1:  # marked delivered, not received
        core = [["my order says delivered but i never got it",
                 "hi, the tracking says my package was delivered {relday} but it's not here",
                 "hi, i need help with my order. it says delivered but i didn't receive anything[| 😞]",
                 "the app says my {product} was delivered but there's nothing at my door"],
                [sorry(rng) + " " + ask_order(rng)],
                GIVE_ORDER,
                ["Thank you. I can see it was marked as delivered on {day} at {time}. Could you check with your neighbors or around your front door[| or mailbox]?",
                 "Thanks. The courier marked it as delivered {relday}. Sometimes packages are left with a neighbor or in a safe place. Could you have a look?"]]
        core += pick(rng, [
            [["i already checked, it's not there", "i asked my neighbors, nobody has it",
              "yes i checked everywhere, nothing[|...]", "no one has it. i've looked everywhere"],
             ["I'm sorry to hear that. I've opened an investigation with the carrier and we'll send you a replacement if it isn't found within 48 hours.",
              "I'm really sorry about this. I've reported it to the courier and [ordered a replacement for you|issued a full refund of {amount}]. You'll get an email confirmation shortly.",
              "Thank you for checking. I'm sorry for the trouble. I've arranged a replacement {product} at no extra cost and it will ship [today|tomorrow]."]],
            [["oh my neighbor had it! sorry", "found it, it was behind the bins 😅", "ah it was in the mailbox, my bad"],
             ["No problem at all, glad you found it!", "Great news! Enjoy your {product} 🙂"]],
        ])
        follow = [("do i need to send you anything?",
                   ["No, you don't need to do anything else. We'll update you by email.",
                    "Not at the moment. If the carrier needs a statement, we'll email you."])]
    elif scenario == 2:  # lost
        core = [opener,
                [sorry(rng) + " " + ask_order(rng)],
                GIVE_ORDER,
                ["Thank you. I'm sorry, it looks like the package was lost in transit. I can send you a replacement [at no extra cost|free of charge] or issue a full refund. Which would you prefer?",
                 "Thanks for the number. Unfortunately the carrier has confirmed the parcel is lost. Would you like a replacement or a refund?"]]
        core += pick(rng, [
            [["a replacement please", "replacement please, i still need it", "send a new one please[| 🙏]"],
             ["Done! A replacement has been ordered and will ship within 24 hours.",
              "Sure, I've ordered a new {product} for you. It will ship [today|tomorrow] at no extra cost."]],
            [["i'd rather have a refund", "can i get a refund? i don't need it anymore", "refund please"],
             ["No problem. I've issued a full refund of {amount}. It should appear on your card within 3 to 5 business days.",
              "Sure, please allow a few days for it to process. I've started the refund of {amount} for you."]],
        ])
        follow = [("will i have to pay shipping again?",
                   ["No, shipping is free for the replacement.", "Not at all, there's no extra charge."])]
    else:  # wrong or missing item
        core = [["i received the wrong item. i ordered a {product} but got a {product2}",
                 "hi, i need help with my order. the box had a {product2} instead of my {product}",
                 "my order arrived but the {product} is missing from the box",
                 "hello, i got the wrong color. i ordered a {color} {product} and got a different one",
                 "i think you sent me someone else's order[|??]"],
                [sorry(rng) + " Sure, please send me your order number and a photo of what you received.",
                 sorry(rng) + " " + ask_order(rng)],
                ["it's {order}, photo attached", "{order}. i'll send the photo now", "order {order}",
                 "sure, it's {order}"],
                ["Thank you. I've arranged a free return for the wrong item and we'll ship the correct {product} [today|tomorrow].",
                 "Thanks! I can see the mistake on our side. Your {product} will be sent out today and you can keep the other item.",
                 "Thank you for the details. I've sent your {product} by express delivery. It should arrive by {day}."]]
        follow = [("how fast will it get here?",
                   ["It's going by express, so [tomorrow|in 1 to 2 days|by {day}].",
                    "You should have it by {day}."])]
    return core, follow


def refunds(rng, s):
    scenario = rng.randrange(3)
    if scenario == 0:  # where is my refund
        core = [["hi, i need help with my refund", "i returned my {product} {relday} and still haven't gotten my refund",
                 "when will i get my refund?", "hello, i was told i'd get a refund but nothing has shown up on my card yet",
                 "i'm still waiting for a refund for my {product}[|. it's been {n} weeks]",
                 "hi, i need help with my refund, it's been ages", "where is my refund??"],
                [rng.choice(["I'm sorry for the wait.", "I'm sorry to hear that.", "Sorry for the delay!"]) + " " + ask_order(rng),
                 "I can check that for you. Sure, please send me your order number."],
                GIVE_ORDER,
                ["Thank you! I can see the refund of {amount} was issued on {date}. It usually takes 5 to 10 business days to show up on your statement.",
                 "Thanks. We received your return but the refund hadn't been processed yet. I've escalated it and you'll get {amount} back within 3 business days.",
                 "Thank you for waiting. The refund of {amount} was sent to your card ending in {card} on {date}. Your bank may take a few more days to show it."]]
        follow = [("will it go back to my card or as store credit?",
                   ["It will go back to the original payment method, your card ending in {card}.",
                    "It goes back to your original payment method, not store credit."]),
                  ("what if it still isn't there next week?",
                   ["Then please contact us again and we'll send you a payment confirmation for your bank.",
                    "If it's not there by then, message us with case number {case} and we'll chase it."])]
    elif scenario == 1:  # request a refund
        core = pick(rng, [
            [["i want a refund for my {product}, it [stopped working|arrived damaged|is not what i expected]",
              "i'd like a refund please. the {product} broke after {n} days",
              "hi, i need help getting a refund for my {product}"],
             [sorry(rng) + " " + ask_order(rng)],
             GIVE_ORDER],
            [["can i get a refund for order {order}?", "hi, i need a refund for order {order}"],
             [sure(rng) + " Could you tell me what's wrong with the item?", "Sure, please tell me what happened with the item."],
             ["it just [stopped working|won't turn on|is cracked]", "the {product} was damaged when it arrived",
              "the quality is really bad", "it arrived broken[| 😞]", "it's not what i expected at all"]],
        ])
        core += [["Thank you. I've started a refund of {amount} to your original payment method. You don't need to send the item back.",
                  "Thanks for letting me know. I've emailed you a return label. Once we receive the item we'll refund {amount}.",
                  "I'm sorry about that. I've processed a full refund of {amount}. You'll see it in 3 to 5 business days."]]
        follow = [("do i need to keep the packaging?",
                   ["Not necessarily, any box will do if we need it back.", "No, that's not needed."])]
    else:  # partial refund
        core = [["i got a refund but it's less than what i paid", "hi, my refund was only {amount2} but i paid {amount}",
                 "why is my refund smaller than the price of the {product}?"],
                ["I'm sorry for the confusion. " + ask_order(rng), "Let me check that for you. " + ask_order(rng)],
                GIVE_ORDER]
        core += pick(rng, [
            [["Thank you. The difference is the shipping cost, which isn't refundable for change-of-mind returns."],
             ["oh ok, that makes sense", "hmm ok. i didn't know that", "ok thanks for explaining"],
             ["No problem! Let me know if anything else looks wrong.", "You're welcome, sorry it wasn't clearer."]],
            [["Thank you. The difference is the shipping cost, which isn't refundable for change-of-mind returns."],
             ["that's not fair, i wasn't told about that", "but the item was faulty, not change of mind!"],
             ["I understand, and I'm sorry. As a one-time gesture I've refunded the shipping cost as well.",
              "You're right, I'm sorry. I've refunded the shipping too. You'll see it in a few days."]],
            [["Thanks. You're right, that was our mistake. I've refunded the remaining amount and you'll see it in a few days.",
              "Thank you for checking. Part of the refund was stuck in our system. I've released it, so the rest will arrive within 3 business days."]],
        ])
        follow = []
    return core, follow


def billing(rng, s):
    scenario = rng.choice([0, 0, 1, 2, 3])
    if scenario == 0:  # charged twice, refunded
        core = [["i was charged twice for my {billed}", "hi, i was charged twice for my {billed} this month",
                 "hi, i need help with my bill. i was charged twice for my {billed}",
                 "hello, i think i was charged twice for my {billed}[|!|??]",
                 "why was i charged twice? i see two payments of {amount} on my card",
                 "i was charged twice for my {billed}, can you refund one please?",
                 "hi, i was charged twice for my {billed} 😡", "i was charged twice for my {billed} [yesterday|this morning|on {date}]"]]
        core += pick(rng, [
            [[sorry(rng) + " Sure, please share the email address on your account[| and the last 4 digits of the card] so I can look into it.",
              "I'm sorry to hear that. Sure, please send me the email on your account and I'll check the payments."],
             ["it's {email}", "{email}", "my email is {email}", "sure, {email}, card ending {card}"]],
            [[sorry(rng) + " Can you tell me the date of the charges and the amount?"],
             ["the card ends in {card}. both charges were on {date} for {amount}", "both were {amount}, on {date}",
              "{date}, {amount} each"]],
        ])
        core += [["Thank you for waiting. I can see the duplicate charge of {amount} on {date}. I've refunded it, and you should see it back on your card within 3-5 business days.",
                  "Thanks! You're right, the payment went through twice. I've cancelled the second charge and refunded {amount}.",
                  "Thank you. I found the double payment. The extra {amount} has been refunded to your card ending in {card}."]]
        follow = [("will this happen again next month?",
                   ["It shouldn't. It was caused by a payment error on our side which has been fixed.",
                    "No, I've checked your billing settings and everything looks correct now."])]
    elif scenario == 1:  # pending authorization
        core = [["i was charged twice for my {billed}", "hey i was charged twice for my {billed}, whats going on",
                 "hi, i was charged twice for my {billed}. can you check?",
                 "there are two charges of {amount} on my account for the same order",
                 "i see a double charge on my card for my {billed}"],
                [sorry(rng) + " Sure, please give me the email address on the account and I'll check.",
                 "Let me check that for you. What's the email address on your account?"],
                ["{email}", "it's {email}", "sure it's {email}"],
                ["Thank you. It looks like one of the charges is a pending authorization that will drop off automatically in a few days. You were only billed once.",
                 "Thanks for waiting. Only one of those payments was completed. The other one is a temporary hold from your bank and will disappear within 3 to 5 days."]]
        core += pick(rng, [
            [["oh ok, so i don't need to do anything?", "ok so the second one will just go away?"],
             ["That's right, no action is needed on your side.", "Exactly, it will go away on its own."]],
            [["are you sure? it looks like a real charge", "hmm, my bank says it's a real payment"],
             ["Yes, I'm sure. If it's still there after 5 business days, just contact us and we'll sort it out.",
              "I understand the worry. It's only a hold, but if it hasn't disappeared by {day}, message us and we'll refund it."]],
        ])
        follow = []
    elif scenario == 2:  # unknown charge
        core = [["there's a charge on my card i don't recognize", "what is this charge of {amount} on my statement?",
                 "hi, i need help with my bill, there's a payment i didn't make",
                 "i was charged {amount} and i don't know why"],
                [sure(rng) + " Sure, please share the email address on your account and the date of the charge.",
                 "I can look into that. Can you give me the email on the account and the amount?"],
                ["{email}, it was on {date}", "it's {email}. the charge was {amount}", "{email}, {amount} on {date}"],
                ["Thank you. That charge is for your {plan} plan renewal on {date}.",
                 "Thanks! That payment is the yearly renewal of your {plan} membership."]]
        core += pick(rng, [
            [["oh i forgot about that. can i cancel it and get refunded?", "i didn't want it to renew. can you cancel it?",
              "ah ok, i thought i had cancelled it. can i get my money back?"],
             ["Sure! Since you haven't used it since the renewal, I've cancelled it and refunded {amount}.",
              "No problem. I've turned off auto-renewal and refunded the charge in full."]],
            [["oh right. ok never mind then", "ah yes, i forgot. that's fine"],
             ["No worries! Let me know if you want to change anything about the plan.", "No problem at all!"]],
        ])
        follow = [("how do i turn off auto renew myself?",
                   ["Go to Settings, then Billing, and switch off Auto-renew.",
                    "You can do it in your account under Subscription > Manage > Turn off auto-renewal."])]
    else:  # higher bill
        core = [["my bill is higher than usual this month", "why is my bill {amount} this month? it's normally {amount2}",
                 "hi, i need help with my bill. it went up and nobody told me",
                 "hello, my monthly payment went up, can you explain?"],
                ["I'm sorry for the surprise. Sure, please confirm the account number or email so I can check.",
                 "I can check that for you. What's the email address or account number?"],
                ["{email}", "account number is {acct}", "it's {acct}"],
                ["Thank you. Your promotional discount ended last month, so the price went back to {amount} a month.",
                 "Thanks! I can see an extra charge for going over your data limit on {date}.",
                 "Thank you. The price of the {plan} plan went up on {date}. We sent an email about it in {month}."],
                ["can you do anything about it?", "is there a cheaper plan?", "that's a lot more than before",
                 "i can't afford that. can you help?"],
                ["I understand. I can move you to the {plan2} plan, which is {amount2} a month. Would you like that?",
                 "I understand. I've applied a loyalty discount of 20% for the next 12 months.",
                 "I understand. I've credited {amount2} to your account as a goodwill gesture."]]
        follow = [("will that show on my next bill?",
                   ["Yes, you'll see it on your next bill.", "Yes, it applies from your next billing date."])]
    return core, follow


ASK_EMAIL = ["Sure, please confirm the email address on your account and I'll send you a reset link.",
             "I can help with that. For security, can you confirm your full name and the email address linked to the account?",
             "Sure, please tell me the username or email you use to log in.",
             "Of course! What's the email address on your account?",
             "Sure, please send me the email address you signed up with."]
GIVE_EMAIL = ["it's {email}", "{email}", "the email is {email}", "my username is {username}",
              "{fullname}, {email}", "sure, it's {email}", "{email} i think, or maybe my work email"]


def account(rng, s):
    scenario = rng.choice([0, 0, 0, 1, 2, 3, 4])  # password resets are the most common
    if scenario == 0:  # password reset
        core = [["can you reset my password?", "hi, can you reset my password please? i'm locked out",
                 "i forgot my password and the reset email never arrives",
                 "hi, i need help with my account. i can't log in[| anymore]",
                 "can you reset my password? i tried {n} times and it says incorrect",
                 "hi, i need help with my password", "can you reset my password pls",
                 "i can't log in to my account[|, it says wrong password|!!]", "can you reset my password for me? 🙏",
                 "can you reset my password? i forgot it[| again]", "hello, can you reset my password? the link on the website doesn't work"],
                [rng.choice(ASK_EMAIL), sorry(rng) + " " + rng.choice([a for a in ASK_EMAIL if a.startswith("Sure")])],
                GIVE_EMAIL,
                ["Thank you. I've sent a password reset link to {email_masked}. It's valid for [30 minutes|one hour|24 hours].",
                 "Thanks, {first}! I've sent you a reset link. Please check your inbox and follow the steps.",
                 "Thank you. A reset link is on its way to your email. Let me know if it doesn't arrive."]]
        if rng.random() < 0.45:
            core += [["i didn't get the email", "still nothing in my inbox", "hmm i don't see it", "nothing yet[|...]"],
                     ["Please check your spam or junk folder. If it's not there, I can resend it.",
                      "Sometimes it takes a few minutes. Could you check your spam folder as well?"]]
            core += pick(rng, [
                [["found it in spam, thanks!", "ok got it now", "found it, thank you", "it's there now, resetting it"],
                 ["Great! Let me know if you have any trouble logging in.", "Perfect! You should be able to log in now."]],
                [["not in spam either", "nope, nothing there"],
                 ["Thanks for checking. I've resent it now, and I've set a temporary password that I've sent to you by text.",
                  "I'm sorry about that. I've resent the link from a different address. It should arrive within a minute."]],
            ])
        follow = [("how do i make sure this doesn't happen again?",
                   ["I'd recommend saving your password in a password manager and turning on two-factor authentication.",
                    "You can turn on two-factor authentication in Settings > Security for extra protection."])]
    elif scenario == 1:  # locked account
        core = [["my account got locked after too many attempts", "hi, my account is locked. can you unlock it?",
                 "can you reset my account? it says it's locked", "can you reset my login? my account is locked",
                 "it says my account is temporarily locked. what do i do?",
                 "hi, i need help with my account, it's locked"],
                [sorry(rng) + " " + rng.choice([a for a in ASK_EMAIL[1:] if a.startswith("Sure")]), rng.choice(ASK_EMAIL[1:])],
                GIVE_EMAIL,
                ["Thank you. I've unlocked your account. You can log in again now.",
                 "Thanks! Your account is unlocked. If you don't remember the password, use the 'forgot password' link.",
                 "Thanks for confirming. The lock has been removed and you can try again."]]
        follow = [("can you reset my password too?",
                   ["Sure, I've sent a reset link to {email_masked}.", "Of course! A reset link is on its way to your inbox."])]
    elif scenario == 2:  # two-factor
        core = [["i lost my phone and can't get the two-factor code", "can you reset my two-factor authentication?",
                 "can you reset my two-factor login? i lost my phone",
                 "hi, i got a new phone and now i can't log in because of the 2fa code",
                 "can you reset my 2fa please? i don't have my old phone anymore"],
                [sorry(rng) + " For security, can you confirm your full name, email and the last 4 digits of the card on the account?",
                 "Sure, please confirm your full name, the email on the account and the last 4 digits of your card so I can verify you."],
                ["{fullname}, {email}, card ends in {card}", "{fullname}. {email}, card {card}", "sure. {fullname}, {email}, {card}"],
                ["Thank you for verifying. I've disabled two-factor authentication on your account. Please set it up again on your new phone after you log in.",
                 "Thanks! I've reset your two-factor settings. Next time you log in you'll be asked to set it up again."]]
        follow = [("can i use an app instead of sms?",
                   ["Yes, you can use any authenticator app. Choose 'authenticator app' when you set it up.",
                    "Yes! In Settings > Security you can pick an authenticator app instead of text messages."])]
    elif scenario == 3:  # hacked
        core = [["i think someone hacked my account", "hi, someone changed my password and i can't get in",
                 "there are orders on my account that i didn't make!", "i got an email that my password was changed but it wasn't me"],
                ["I'm sorry to hear that. Sure, please confirm the email address on the account right away.",
                 "I'm really sorry to hear that. Let's secure your account now. What's the email on the account?"],
                GIVE_EMAIL,
                ["Thank you. I've signed out all sessions and locked the account. I've sent you a link to set a new password.",
                 "Thanks. I've secured your account and sent a reset link to {email_masked}. Please turn on two-factor authentication after you log in."]]
        if rng.random() < 0.6:
            core += pick(rng, [
                [["what about the orders i didn't make?", "will i get my money back?"],
                 ["I've cancelled the orders and you'll get a full refund within 5 business days.",
                  "Don't worry, I've cancelled those orders and refunded {amount} to your card."]],
                [["did they see my card details?", "is my card safe?"],
                 ["Your full card number is never shown in the account, so it wasn't visible. You may still want to keep an eye on your statement."]],
            ])
        follow = []
    else:  # change email
        core = [["i need to change the email on my account", "hi, how do i update my email address?",
                 "can you change my login email? i don't use the old one anymore",
                 "hi, i need help with my account settings. i want to change my email"],
                [sure(rng) + " Sure, please tell me your current email and the new one you'd like to use.",
                 "Sure, please tell me your current email and the new one you'd like to use."],
                ["old one is {email}, new one is {first_l}.{last_l}@{dom}", "current: {email}. new: {first_l}{n}@{dom}",
                 "it's {email} now, i want to use {first_l}.{last_l}@{dom} instead"],
                ["Thank you. I've sent a confirmation link to your new address. Once you click it, the change will be done.",
                 "Done! Your email is updated. Please use the new address the next time you log in."]]
        follow = [("will i lose my order history?",
                   ["No, everything stays on your account.", "Not at all, your history and settings stay the same."])]
    return core, follow


def subscriptions(rng, s):
    scenario = rng.randrange(5)
    if scenario == 0:  # cancel, retention offer
        core = [["hi, i want to cancel my subscription", "how do i cancel my {plan} plan?", "hi, i need help with my subscription. i want to cancel",
                 "please cancel my membership", "i'd like to cancel my subscription[| please| asap]", "can you cancel my {plan} subscription?"],
                ["I'm sorry to see you go. Before I cancel it, can I ask why you're leaving?",
                 "I can help with that. May I ask the reason for cancelling?",
                 "Sure, I can do that for you. Is there a reason you'd like to cancel?"],
                ["it's too expensive for me right now", "i don't use it enough", "i found another service",
                 "just taking a break", "money is tight at the moment", "i'm moving abroad", "it's not worth it for me anymore"],
                ["I understand. I could offer you [50% off for 3 months|one free month|the {plan2} plan at a lower price] if you'd like to stay. Otherwise I can cancel it right away.",
                 "Thanks for telling me. Would a discount help? I can give you 3 months at half price."]]
        core += pick(rng, [
            [["no thanks, please cancel it", "no, just cancel please", "thanks but no, please go ahead and cancel"],
             ["Done. Your subscription is cancelled and you'll keep access until {date}.",
              "No problem, it's cancelled. You won't be charged again. You can still use it until {date}."]],
            [["oh that sounds good, i'll take the discount", "hmm ok, i'll try the discount", "ok, i'll stay then"],
             ["Great! I've applied the discount to your account. Your next payment will be {amount2}.",
              "Wonderful! The offer is now on your account and starts from your next bill."]],
        ])
        follow = [("will i get a confirmation email?",
                   ["Yes, you'll get a confirmation email in a few minutes.", "Yes, it's already been sent to {email_masked}."]),
                  ("can i come back later and keep my settings?",
                   ["Yes, we keep your settings for 12 months, so you can pick up right where you left off.",
                    "Of course, just sign in and choose a plan again."])]
    elif scenario == 1:  # upgrade
        core = [["i'd like to upgrade to the {plan2} plan", "hi, can i upgrade my plan?", "how do i change to the {plan2} plan?",
                 "hi, i need help with my plan. i want more [storage|users|data]"],
                ["Of course! Sure, please confirm the email on your account.",
                 "Happy to help! What's the email address on the account?"],
                ["{email}", "it's {email}", "sure, {email}"],
                ["Thanks! I've upgraded you to the {plan2} plan. The new price is {amount} a month and you'll be charged the difference today.",
                 "Done! You're now on the {plan2} plan. It costs {amount} a month, starting from your next billing date."]]
        follow = [("can i go back to my old plan later?",
                   ["Yes, you can switch back anytime in your account settings.",
                    "Of course, just contact us or change it under Settings > Plan."])]
    elif scenario == 2:  # monthly to annual
        core = [["can i switch from monthly to annual billing?", "is there a yearly option for my plan?",
                 "hi, how much is the annual plan?"],
                ["Yes, you can! Annual billing is {amount} a year, which saves you about two months. Would you like me to switch it now?",
                 "Sure! The annual {plan} plan costs {amount} a year. Shall I change it for you?"]]
        core += pick(rng, [
            [["yes please", "yes, go ahead", "sounds good, do it", "ok yes please switch it"],
             ["Done! You're now on annual billing. The new payment will be taken on {date}.",
              "All set! You'll be billed yearly from {date}."]],
            [["hmm let me think about it", "not yet, i'll think about it"],
             ["No problem, take your time. You can switch anytime in your account settings."]],
        ])
        follow = []
    elif scenario == 3:  # renewed by surprise
        core = [["my subscription renewed but i wanted to cancel it", "i was charged for a renewal i didn't want",
                 "hi, i need help with my subscription. it renewed yesterday and i forgot to cancel"],
                ["I'm sorry about that. Sure, please confirm the email on the account and I'll check.",
                 "I'm sorry to hear that. What's the email address on the account?"],
                ["{email}", "it's {email}"],
                ["Thank you. Since it renewed [yesterday|2 days ago|on {date}] and you haven't used it, I can cancel it and refund {amount}. Would you like that?",
                 "Thanks. I can see the renewal on {date}. I can give you a full refund and cancel the subscription. Is that ok?"],
                ["yes please", "yes, thank you!", "that would be great", "yes please do that 🙏"],
                ["Done! Your subscription is cancelled and {amount} will be back on your card in 3-5 business days.",
                 "All done. You won't be charged again and the refund is on its way."]]
        follow = []
    else:  # pause
        core = [["can i pause my membership for a couple of months?", "is it possible to pause my subscription?",
                 "hi, i'm traveling for {n} weeks, can i freeze my membership?"],
                ["Yes, you can pause it for up to 3 months. Sure, please confirm the email on your account.",
                 "Of course! What's the email address on the account?"],
                ["{email}", "it's {email}", "sure it's {email}"],
                ["Thank you. I've paused your membership. It will restart automatically on {date} and you won't be charged until then.",
                 "Done! Your subscription is on hold until {date}."]]
        follow = [("can i restart it earlier if i want?",
                   ["Yes, just log in and tap 'resume' anytime.", "Sure, you can resume it whenever you like from your account page."])]
    return core, follow


ASK_ACCT = ["Sure, please confirm your account number or the address of the service.",
            "Can you give me your account number so I can check your line?",
            "Sure, please share the account number or the address of the service."]
GIVE_ACCT = ["my account number is {acct}", "{acct}", "it's {address}", "account {acct}",
             "the address is {address}", "sure, {acct}"]


def internet(rng, s):
    scenario = rng.randrange(4)
    if scenario == 0:  # outage
        core = [["my internet is not working", "no internet since [this morning|yesterday|last night]",
                 "hi, i need help with my internet connection, it's completely down",
                 "is there an outage in {city}? my internet is down", "my wifi stopped working[|!|...]"],
                [sorry(rng) + " " + rng.choice(ASK_ACCT), rng.choice(ASK_ACCT)],
                GIVE_ACCT,
                ["Thanks. I can see there's an outage in your area[| affecting {city}]. Our technicians are working on it and it should be fixed [within a few hours|by tonight|by {time}].",
                 "Thank you. There is a network problem in your area at the moment. We expect it to be fixed by {time} today."]]
        follow = [("will i get money back for the days without internet?",
                   ["Yes, you'll get a credit on your next bill for the time you were offline.",
                    "Yes, I've added a credit of {amount2} to your account for the inconvenience."]),
                  ("can you text me when it's fixed?",
                   ["Sure, I've signed you up for outage updates by text.", "Of course, you'll get a text as soon as it's back."])]
    elif scenario == 1:  # router reset
        core = [["can you reset my router? nothing is working", "hi, i need help with my router, the light is blinking [red|orange]",
                 "can you reset my router remotely? i'm not at home", "my router keeps restarting by itself",
                 "hi, i need help with my router. the internet light is off", "can you reset my router please"]]
        core += pick(rng, [
            [[sorry(rng) + " " + rng.choice(ASK_ACCT)], GIVE_ACCT],
            [["Sure, please try restarting the router first: unplug it for 30 seconds and plug it back in.",
              "Sure, please switch the router off and on again first, and wait two minutes."],
             ["i already tried that, still nothing", "ok, done. the light is still red", "tried that twice already[| 😩]"],
             ["Thanks for trying. " + rng.choice(ASK_ACCT)],
             GIVE_ACCT],
        ])
        core += [["Thanks. I've reset your router remotely. Please wait about 5 minutes for it to restart and let me know if it works.",
                  "Thank you. I've sent a reset signal to your router. It will restart in a few minutes."]]
        core += pick(rng, [
            [["it's working now, thank you!", "yes it's back!", "ok the light is green now"],
             ["Great to hear! Let me know if it drops again.", "Perfect! Everything looks good on our side too."]],
            [["still not working", "nope, still nothing", "no, still the same"],
             ["I'm sorry to hear that. I'll book a technician visit. Would {day} between {window} work?"],
             ["yes that works", "{day} is fine", "yes please"],
             ["Booked! The technician will come on {day} between {window}. You'll get a text before they arrive.",
              "Done, I've booked it. You'll get a confirmation by text."]],
        ])
        follow = []
    elif scenario == 2:  # slow wifi
        core = [["the wifi is really slow today", "my internet is super slow", "hi, i'm paying for fast internet but it's really slow",
                 "hi, i need help with my internet, pages take forever to load"],
                [sorry(rng) + " Are you connected by wifi or by cable?",
                 "I'm sorry to hear that. Is it slow on all devices or just one?"],
                ["wifi", "wifi, on all devices", "just on my laptop", "both, everything is slow", "on wifi, the tv is slow too"],
                ["Thanks. Sure, please try moving closer to the router and restarting it. I'll also run a line test from here.",
                 "Thank you. I've run a test and your line looks fine. The router may be on a busy channel. I've changed it remotely, so please try again in a couple of minutes.",
                 "Thanks! Sure, please restart the router and check again. If it's still slow I can send you a wifi extender."]]
        if rng.random() < 0.6:
            core += pick(rng, [
                [["ok it's much better now", "that fixed it!", "it's a lot faster now"],
                 ["Great! Let me know if it happens again.", "Glad to hear it! 🙂"]],
                [["still slow", "it's a bit better but still slow"],
                 ["I'm sorry to hear that. I'll send you a free wifi extender. It should arrive by {day}."]],
            ])
        follow = [("should i get a new router?",
                   ["Your router is fairly old, so I've arranged a free upgrade. It'll ship this week.",
                    "Not for now, your router is up to date."])]
    else:  # drops
        core = [["my connection keeps dropping every few minutes", "hi, i need help with my internet connection, it keeps dropping",
                 "the internet cuts out all the time, especially in the evening"],
                [sorry(rng) + " " + rng.choice(ASK_ACCT)],
                GIVE_ACCT]
        core += pick(rng, [
            [["Thank you. I can see a lot of disconnections on your line. I've made a change on our side. Could you check if it's better over the next hour?"],
             ["ok, i'll check", "thanks, i'll let you know", "alright"],
             ["Sure, please message us again if it keeps happening.", "Thank you! We'll follow up by email tomorrow."]],
            [["Thanks. There's a fault on the line outside your home. I've booked an engineer for {day} between {window}."],
             ["ok, will they need to come inside?", "do i need to be home?"],
             ["They may need to check the socket inside, so please make sure someone is home.",
              "Yes, please make sure someone is home in case they need to check the router."]],
        ])
        follow = []
    return core, follow


def app(rng, s):
    core = [["the app keeps crashing when i open it", "hi, i need help with the app, it crashes every time i try to {action}",
             "since the last update the app won't open on my {device}", "the app freezes on the loading screen",
             "i can't {action}, the app just closes", "your app keeps crashing[|!!|...]",
             "hi, the app crashes when i try to {action}. any idea why?", "the app is not working on my {device}"]]
    core += pick(rng, [
        [[sorry(rng) + " Which device and app version are you using?",
          sorry(rng) + " Could you tell me which phone you have and the app version?"],
         ["{device}, version {ver}", "i'm on a {device}, not sure about the version",
          "{device}. the app is version {ver} i think", "i have a {device}"]],
        [["Sorry about that! Sure, please try updating the app to the latest version and restarting your phone.",
          sorry(rng) + " Have you tried updating the app and restarting your phone?"],
         ["already updated, still crashing", "yes i did that, same problem", "it's up to date. still crashes on my {device}"]],
    ])
    core += pick(rng, [
        [["Thanks. This is a known issue and a fix is coming [this week|in the next update|in a few days]. In the meantime, clearing the app cache should help."],
         ["how do i clear the cache?", "where do i do that?"],
         ["Go to Settings, then Apps, choose our app, then Storage and tap Clear cache.",
          "On your phone, open Settings > Apps > our app > Storage > Clear cache."]],
        [["Thank you. Sure, please try uninstalling and reinstalling the app. Your data is saved to your account so you won't lose anything.",
          "Thanks! Sure, please log out, close the app completely and log in again. That usually fixes it.",
          "Thanks! Could you try turning off battery saver mode and opening the app again?"],
         ["ok that worked!", "it works now, thanks", "that fixed it, thanks!", "ok it opens now 👍"],
         ["Great, glad it's working!", "Perfect! Let me know if it happens again."]],
        [["Thank you. Sure, please try uninstalling and reinstalling the app. Your data is saved to your account so you won't lose anything.",
          "Thanks! Sure, please log out, close the app completely and log in again. That usually fixes it."],
         ["still crashing :(", "nope, same problem", "didn't work[| 😞]"],
         ["I'm sorry to hear that. I've sent this to our technical team with your device details. We'll email you when it's fixed.",
          "I'm sorry about that. I've created a ticket ({case}) for our developers. In the meantime you can use the website."]],
        [["Thanks for the details. We released a fix today in version {ver}. Sure, please update the app from the store and try again.",
          "Thank you. Our team is already working on this bug. A fix should be out by {day}."]],
    ])
    follow = [("will i lose my data if i reinstall?",
               ["No, your data is saved to your account, so you won't lose anything.",
                "Not at all, just log in again after reinstalling."]),
              ("is there a way to use it on my computer meanwhile?",
               ["Yes, you can use the web version in any browser with the same login.",
                "Yes, everything is available on our website too."])]
    return core, follow


ASK_REF = ["Sure, please send me your booking reference and the name on the booking.",
           "I can help with that. Can I have the booking reference?",
           "Of course! What's your booking reference?",
           "Sure, please share the booking number so I can find it."]
GIVE_REF = ["it's {ref}, under {fullname}", "{ref}", "the reference is {ref}", "{ref}, name is {fullname}",
            "booking ref {ref}", "sure, {ref}"]


def bookings(rng, s):
    scenario = rng.randrange(4)
    if scenario == 0:  # cancel
        core = [["i need to cancel my booking for {day}", "i'd like to cancel my {bthing} on {day}",
                 "hi, i need help with my booking. i have to cancel it", "can you cancel my reservation please?",
                 "hi, i need to cancel my {bthing}[|, something came up]", "can you cancel my booking? i can't make it"],
                [rng.choice(ASK_REF), sure(rng) + " " + rng.choice([a for a in ASK_REF if a.startswith("Sure")])],
                GIVE_REF]
        core += pick(rng, [
            [["Thank you. Your booking {ref} is cancelled. Since you cancelled more than 24 hours in advance, you'll get a full refund of {amount}.",
              "Done! Your {bthing} on {day} has been cancelled and the refund will go back to your card."]],
            [["Thanks, {first}. I've cancelled it. Because it's within 48 hours of the booking, there is a cancellation fee of {fee}."],
             ["oh, can you waive the fee? i'm sick", "is there any way to avoid the fee?", "that's a lot, can you do anything?"],
             ["I'm sorry to hear that. I've made an exception this time and waived the fee.",
              "I understand. I can't remove the fee, but I can give you a voucher for the full amount to use later."]],
        ])
        follow = [("when will i get the refund?",
                   ["It usually takes 5 to 7 business days to reach your card.", "You should see it within a week."])]
    elif scenario == 1:  # change date
        core = [["can i change my reservation to {day2}?", "hi, can i move my {bthing} to a later time?",
                 "hi, i need help with my booking, i need to change the date",
                 "is it possible to change my {bthing} from {day} to {day2}?"],
                [rng.choice(ASK_REF)],
                GIVE_REF]
        core += pick(rng, [
            [["Done! I've moved your booking to {day2} at {time}. You'll get a new confirmation email shortly.",
              "Thanks! I've changed it to {day2} at {time}. There's no extra charge."]],
            [["I'm sorry, {day2} is fully booked. I have availability on {day3} or the following {day}. Would either work?"],
             ["{day3} works", "ok {day3} then", "the following {day} is fine", "{day3} at {time} please"],
             ["Great, you're all set. I've sent the new confirmation to your email.",
              "Perfect, I've changed it. You'll get an updated confirmation shortly."]],
        ])
        follow = [("is there a fee for changing it?",
                   ["No, changes are free up to 24 hours before.", "No, there's no fee this time."])]
    elif scenario == 2:  # no confirmation
        core = [["i booked a {bthing} but never got a confirmation email", "hi, did my booking go through? i didn't get any email",
                 "i paid for a {bthing} but i'm not sure it's confirmed"],
                ["Let me check that for you. Sure, please tell me the name and email used for the booking.",
                 "Sure, please tell me the name and email used for the booking."],
                ["{fullname}, {email}", "{email}", "it's under {fullname}, email {email}"],
                ["Thanks! I can see your booking is confirmed for {day} at {time}. I've resent the confirmation to {email_masked}.",
                 "Thank you. Your {bthing} is confirmed. The email may have gone to your spam folder, so I've sent it again."]]
        follow = [("can i add one more person?",
                   ["Sure, I've added one more guest. The total is now {amount}.",
                    "I'm sorry, that one is full, but I can book a second spot for {day2}."])]
    else:  # new booking
        core = [["hi, i'd like to book a {bthing} for {day}", "do you have anything available on {day} around {time}?",
                 "can i book a {bthing} for next {day}?"],
                ["Of course! How many people will it be for?", "Sure! For how many people?"],
                ["just me", "2 people", "{n} of us", "for two adults and one child", "me and my partner"]]
        core += pick(rng, [
            [["Great, I've booked it for {day} at {time}. The reference is {ref}. You'll get a confirmation email shortly."]],
            [["Thanks! I have a spot at {time} on {day}. Shall I book it?"],
             ["yes please", "yes, perfect", "sure, book it"],
             ["Done! Your reference is {ref}. See you on {day}!", "All booked. The reference is {ref}."]],
        ])
        follow = [("can i cancel later if something comes up?",
                   ["Yes, free cancellation up to 24 hours before.", "Yes, just message us at least a day before."])]
    return core, follow


def address(rng, s):
    scenario = rng.randrange(3)
    if scenario < 2:
        core = [["hi, i need to change the delivery address for my order", "can i change my shipping address? i just moved",
                 "i entered the wrong address for my last order", "hi, i need help with my address, the order is going to my old place",
                 "hi, i need help with my order. i put the wrong address[| 🤦]", "can you update the delivery address on my order?"],
                ["Sure, please send me your order number and the new address.", "No problem! What's the order number and the new address?"],
                ["order {order}, new address is {address}", "it's {order}. please send it to {address}",
                 "{order}. the new address is {address}", "{order}, {address}"]]
        if scenario == 0:
            core.append(["Thanks! I've updated the shipping address to {address}. Your order hasn't shipped yet so it will go to the new address.",
                         "Done! The order will be delivered to {address}. The delivery date stays the same."])
        else:
            core.append(["I'm sorry, the order has already shipped, so I can't change the address. I've asked the carrier to redirect it, which usually works within a day.",
                         "Thanks. The parcel is already with the courier, but I've requested a redirect to {address}. You'll get an email once it's confirmed."])
            core += pick(rng, [
                [["what if the redirect doesn't work?"],
                 ["Then the parcel will come back to us and we'll send it again to your new address for free."]],
                [["ok, fingers crossed", "ok thanks for trying"],
                 ["I'll keep an eye on it and update you by email."]],
            ])
        follow = [("can you also update the address on my account?",
                   ["Done, your account now has the new address too.", "Sure, I've updated your default address as well."])]
    else:  # billing address
        core = [["how do i update my billing address?", "i need to change the billing address on my card details",
                 "hi, my card keeps getting declined. i think the billing address is wrong"],
                ["Sure, please tell me the new billing address.", "I can help. What's the correct billing address?"],
                ["{address}", "it should be {address}", "it's {address}"],
                ["Thank you! I've updated your billing address. It will be used from your next payment.",
                 "Done! Please try the payment again now, it should go through."]]
        follow = [("do i need to enter my card again?",
                   ["No, your card is still saved.", "No, only the address was changed."])]
    return core, follow


def returns(rng, s):
    scenario = rng.randrange(3)
    core = [["i want to return my {product}", "hi, i need help with my return", "how do i return an item? the {product} doesn't fit",
             "can i return something i bought [two weeks|a month|10 days] ago?", "i need a return label for my {product}",
             "hi, i'd like to return the {product} i ordered", "hi, i need help with my return. the {product} is the wrong size"],
            ["Sure, please send me the order number and tell me which item you'd like to return.",
             "Of course! Items can be returned within 30 days. What's the order number?",
             sure(rng) + " " + ask_order(rng)],
            ["{order}, it's the {product}", "order {order}. the {product} [is too small|is the wrong color|arrived damaged|isn't what i expected]",
             "it's {order}", "{order}. i want to return the {product}", "sure, {order}"]]
    if scenario == 0:
        core.append(["Thanks! I've emailed you a prepaid return label. Just print it, pack the item and drop it off at any [post office|drop-off point]. Your refund will be processed once we receive it.",
                     "Thank you. I've sent the return label to {email_masked}. Once the item arrives, we'll refund {amount} within 5 days."])
        follow = [("do i need the original box?",
                   ["It helps, but it's not required. Any sturdy box will do.", "No, any box is fine as long as the item is protected."]),
                  ("i don't have a printer, what can i do?",
                   ["No problem, I've sent you a QR code instead. Just show it at the drop-off point.",
                    "You can show the QR code in the email at the post office and they'll print it for you."])]
    elif scenario == 1:
        core.append(["Thank you. Would you like a refund or an exchange for a different size?",
                     "Thanks! Do you want your money back or should we send a different size?"])
        core += pick(rng, [
            [["exchange for a [larger|smaller] size please", "can i exchange it for a {size}?", "exchange it for a {color} one please"],
             ["Done! I've arranged the exchange. Send the item back with the label I emailed you and we'll ship the new one as soon as it arrives.",
              "No problem. I've reserved the new one for you and it will ship today."]],
            [["a refund please", "just a refund", "money back please"],
             ["Sure, please return it with the label in your email. We'll refund {amount} once we receive it."]],
        ])
        follow = [("how long does the whole thing take?", ["Usually about a week in total.", "About 5 to 7 business days from when you send it."])]
    else:
        core += pick(rng, [
            [["I'm sorry, that order is outside our 30-day return window. I can offer you store credit of {amount2} instead."],
             ["ok, store credit is fine", "ok i'll take that", "hmm, i'd prefer a refund"],
             ["Done! The credit has been added to your account.",
              "I understand, but the store credit is the best I can do this time. It never expires."]],
            [["Thanks for checking. The return period ended on {date}, but as a one-time exception I can still accept the return."],
             ["that's great, thank you!", "oh amazing, thanks"],
             ["Great, I've emailed you the return label."]],
        ])
        follow = []
    return core, follow


def warranty(rng, s):
    scenario = rng.randrange(3)
    core = [["my {device_prod} stopped working after {months} months, is it covered by warranty?", "hi, i need help with my warranty claim",
             "my {device_prod} broke after just {months} months", "my {device_prod} won't turn on anymore",
             "hi, i need help with my {device_prod}. it broke and i think it's under warranty",
             "my {device_prod} is making a weird noise. can i get it repaired?"],
            ]
    core += pick(rng, [
        [[sorry(rng) + " Sure, please send me the serial number and the date of purchase.",
          "I'm sorry to hear that. Could you tell me the serial number and when you bought it? The serial is on a sticker on the back."],
         ["serial is {serial}, bought it on {date}", "{serial}, bought in {month}",
          "here: {serial}. bought it about {months} months ago", "it's {serial}. i got it on {date}"]],
        [["Products are covered for [one year|two years] from the date of purchase. Can you share your order number or receipt?",
          sorry(rng) + " Sure, please send me your order number so I can check the purchase date."],
         ["i bought it in {month}, order {order}", "order {order}", "it's {order}", "{order}, bought on {date}"]],
    ])
    if scenario == 0:
        core.append(["Thank you. Your {device_prod} is still under warranty. I've started a repair request and emailed you a shipping label.",
                     "Thanks! Good news, it's covered. We'll send you a replacement {device_prod} and a label to return the old one."])
        follow = [("how long does the repair take?",
                   ["Usually 5 to 7 business days after we receive it.", "About a week, and we'll keep you updated by email."]),
                  ("do i need to send the accessories too?", ["No, just the {device_prod} itself.", "Only the device, please keep the accessories."])]
    elif scenario == 1:
        core.append(["I'm sorry, the warranty expired in {month}. I can offer you a discounted repair for {amount}.",
                     "Thanks. Unfortunately it's no longer under warranty, but we can repair it for {amount}."])
        core += pick(rng, [
            [["ok, let's do the repair", "ok fine, go ahead"], ["Great, I've sent you the repair form and a shipping label."]],
            [["that's too expensive", "hmm that's a lot"], ["I understand. I can give you a 20% discount on a new {device_prod} instead."]],
            [["hmm, i'll think about it", "let me think about it"], ["No problem. The offer is valid for 30 days if you change your mind."]],
        ])
        follow = []
    else:
        core.append(["Thank you. Before we send it for repair, could you try holding the power button for 20 seconds?",
                     "Thanks! Could you try a reset first? Unplug it for a minute, then hold the power button for 15 seconds."])
        core += pick(rng, [
            [["that worked, it's on again!", "oh wow it works now"],
             ["Great! If it happens again, let us know and we'll repair it under warranty."]],
            [["tried it, nothing happens", "still dead"],
             ["I'm sorry to hear that. It's covered by warranty, so I've arranged a free replacement.",
              "Thanks for trying. I've created a repair request ({case}) and emailed you a label."]],
        ])
        follow = []
    return core, follow


FAQ = [
    (["what are your opening hours?", "when is customer service open?", "are you open on sundays?"],
     ["We're here every day from 8am to 8pm[|, and the chat is open 24/7].",
      "Our support team is available Monday to Saturday, 9am to 6pm."]),
    (["do you ship to {city}?", "do you deliver to {city}?", "can you ship my order to {city}?"],
     ["Yes, we do! Delivery to {city} usually takes 2 to 4 business days.",
      "Yes, we deliver to {city}. Standard shipping is free over {amount2}."]),
    (["how long does delivery take?", "how fast is shipping?", "when will my order arrive if i order today?"],
     ["Standard delivery takes 3 to 5 business days, and express takes 1 to 2.",
      "If you order before 2pm, it usually arrives [the next day|within 2 business days]."]),
    (["can i pay with paypal?", "do you accept apple pay?", "what payment methods do you take?"],
     ["Yes! We accept cards, PayPal, Apple Pay and Google Pay.",
      "We accept all major cards and PayPal. You can choose at checkout."]),
    (["do you have a student discount?", "are there any discounts right now?", "do you have any promo codes?"],
     ["Yes, students get 15% off with a valid student email.",
      "We have 10% off your first order if you sign up to our newsletter."]),
    (["how do i contact you by phone?", "is there a phone number i can call?"],
     ["You can call us on the number in the Contact page of the app, every day from 8am to 8pm.",
      "Sure, please use the 'call us' button in the app and we'll call you back within 10 minutes."]),
    (["how do i delete my account?", "can i close my account?"],
     ["You can delete it in Settings > Account > Delete account. It's permanent, so download anything you need first.",
      "Sure, I can do that for you. Please note that it can't be undone. Would you like me to go ahead?"]),
    (["is the {product} back in stock?", "when will the {product} be available again?"],
     ["It should be back in stock [next week|by {day}|at the end of the month]. You can tap 'notify me' on the product page.",
      "I'm sorry, it's sold out at the moment. We expect more by {date}."]),
    (["can i change the language of the app?", "how do i turn on dark mode?", "how do i turn off notifications?"],
     ["Yes, go to Settings > Display and choose the option you want.",
      "Sure, please open Settings in the app. You'll find it under Preferences."]),
    (["do you have gift cards?", "can i buy a gift card?"],
     ["Yes! You can buy digital gift cards from {amount2} on our website.",
      "Yes, gift cards are available in the app under Gifts."]),
]


def faq(rng, s):
    q, a = rng.choice(FAQ)
    opener = rng.choice(["", "", "hi, ", "hello, ", "quick question, ", "hey, "])
    return [[opener + x for x in q], a], []


DOMAINS = [  # (name, generator, weight)
    ("orders", orders, 14), ("refunds", refunds, 9), ("billing", billing, 17), ("account", account, 13),
    ("subscriptions", subscriptions, 9), ("internet", internet, 10), ("app", app, 8),
    ("bookings", bookings, 10), ("address", address, 6), ("returns", returns, 7), ("warranty", warranty, 6),
    ("faq", faq, 7),
]


# ---------------------------------------------------------------------------------------------
# Conversations
# ---------------------------------------------------------------------------------------------

def conversation(rng):
    slots = make_slots(rng)
    slots["first_l"], slots["last_l"] = slots["first"].lower(), slots["last"].lower()
    slots["dom"] = rng.choice(MAIL_DOMAINS)
    name, gen, _ = rng.choices(DOMAINS, weights=[w for _, _, w in DOMAINS])[0]
    core, follow = gen(rng, slots)
    follow = follow + ([rng.choice(GENERIC_FOLLOWUPS)] if rng.random() < 0.3 else [])

    turns = []  # templates
    if rng.random() < 0.2:
        turns += [GREET_USER, GREET_AGENT]
    problem_turn = len(turns)  # index of the user's first problem statement
    extra = rng.choice(USER_EXTRA) if name != "faq" and rng.random() < 0.22 else None
    turns += core
    if follow and rng.random() < 0.35:
        q, a = rng.choice(follow)
        turns += [q, a]
    r = rng.random()
    if r < 0.22:
        turns += [USER_THANKS]
    elif r < 0.72:
        turns += [USER_THANKS, AGENT_CLOSE]
    elif r < 0.84:
        turns += [USER_THANKS, AGENT_CLOSE, USER_DONE, AGENT_BYE]
    # else: no closing
    while len(turns) > 10:  # drop the greeting, then closing turns
        if turns[0] is GREET_USER:
            turns = turns[2:]
        else:
            turns = turns[:-1]
    if len(turns) < 3:
        turns.append(USER_THANKS)

    style = rng.choices(["lower", "proper", "sloppy"], weights=[55, 30, 15])[0]
    agent_hello = rng.random() < 0.2 and turns[0] is not GREET_USER
    out = []
    for i, t in enumerate(turns):
        speaker = "user" if i % 2 == 0 else "agent"
        text = expand(rng, t, slots)
        if i == problem_turn and extra:
            if not text.endswith(("?", "!", ".", "😞", "😩", "🤦", "🙏", "😡")):
                text += rng.choice([".", ".", "!", "..."])
            text += " " + extra
        if speaker == "user":
            text = user_style(rng, style, text)
        else:
            if i == 1 and agent_hello:
                text = expand(rng, rng.choice(HELLO_PREFIX), slots) + " " + text
            text = calendar_caps(text)
            if rng.random() < 0.005:
                text = typo(rng, text)
        out.append((speaker, text))
    return name, out


def check(convs):
    seen = set()
    for cid, turns in convs:
        assert 3 <= len(turns) <= 10, cid
        assert turns[0][0] == "user", cid
        for i, (spk, text) in enumerate(turns):
            assert spk == ("user" if i % 2 == 0 else "agent"), cid
            assert text and "{" not in text and "[" not in text and "\n" not in text, (cid, text)
        key = tuple(turns)
        assert key not in seen, cid
        seen.add(key)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=20240611)
    ap.add_argument("--count", type=int, default=600)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    convs, seen = [], set()
    while len(convs) < args.count:
        _, turns = conversation(rng)
        key = tuple(turns)
        if key in seen:
            continue
        seen.add(key)
        convs.append((f"c{len(convs) + 1:04d}", turns))
    check(convs)
    sys.stdout.reconfigure(encoding="utf-8", newline="\n")
    w = csv.writer(sys.stdout, lineterminator="\n")
    w.writerow(["conversation_id", "speaker", "text"])
    for cid, turns in convs:
        for spk, text in turns:
            w.writerow([cid, spk, text])


if __name__ == "__main__":
    main()
