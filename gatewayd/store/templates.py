"""Alert templates: the common BIN alerts (burglary, missing person ...) a sender starts from.

Seeded once by `gatewayd init-db`; an admin edits them on the page.
"""
from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from ..errors import InputError, NotFound
from ..model import AlertTemplate, Category, FormProblem, Language, utcnow
from ..placeholders import other_brackets
from .alerts import MAX_TEXT, MAX_TITLE, category_of
from .base import StoreBase

DEFAULT_TEMPLATES = [
    ("suspicious_persons", "Verdachte personen / Personnes suspectes", Category.URGENT, {
        "nl": "BIN-alarm: verdachte personen gezien in [straat]. Blijf binnen, sluit ramen en deuren. "
              "Bel 101 als u iets verdachts ziet.",
        "fr": "Alerte PLP : personnes suspectes signalées à [rue]. Restez à l'intérieur, fermez portes et "
              "fenêtres. Appelez le 101 si vous voyez quelque chose de suspect.",
        "de": "BIN-Alarm: verdächtige Personen in [Straße] gesehen. Bleiben Sie drinnen, schließen Sie Fenster "
              "und Türen. Rufen Sie 101 an, wenn Ihnen etwas verdächtig vorkommt.",
        "en": "BIN alert: suspicious persons seen in [street]. Stay inside, lock doors and windows. "
              "Call 101 if you see anything suspicious."}),
    ("burglary", "Inbraak / Cambriolage", Category.URGENT, {
        "nl": "BIN-alarm: inbraak in [straat] rond [uur]. Daders mogelijk nog in de buurt. Niet zelf "
              "tussenkomen; bel 101 met signalement of nummerplaat.",
        "fr": "Alerte PLP : cambriolage à [rue] vers [heure]. Auteurs peut-être encore dans le quartier. "
              "N'intervenez pas ; appelez le 101 avec signalement ou plaque.",
        "de": "BIN-Alarm: Einbruch in [Straße] gegen [Uhr]. Täter eventuell noch in der Nähe. Nicht selbst "
              "eingreifen; rufen Sie 101 mit Beschreibung oder Kennzeichen an.",
        "en": "BIN alert: burglary in [street] around [time]. Suspects may still be nearby. Do not intervene; "
              "call 101 with a description or number plate."}),
    ("missing_person", "Vermiste persoon / Personne disparue", Category.URGENT, {
        "nl": "BIN-oproep: vermiste persoon [naam], [leeftijd] jaar, [beschrijving]. Laatst gezien in [plaats]. "
              "Info? Bel 101.",
        "fr": "Appel PLP : personne disparue [nom], [âge] ans, [description]. Vue pour la dernière fois à "
              "[lieu]. Info ? Appelez le 101.",
        "de": "BIN-Aufruf: vermisste Person [Name], [Alter] Jahre, [Beschreibung]. Zuletzt gesehen in [Ort]. "
              "Hinweise an 101.",
        "en": "BIN appeal: missing person [name], aged [age], [description]. Last seen in [place]. "
              "Information? Call 101."}),
    ("stolen_vehicle", "Gestolen voertuig / Véhicule volé", Category.URGENT, {
        "nl": "BIN-alarm: gestolen voertuig [merk, kleur], nummerplaat [plaat], richting [richting]. Gezien? "
              "Bel 101, niet volgen.",
        "fr": "Alerte PLP : véhicule volé [marque, couleur], plaque [plaque], direction [direction]. Vu ? "
              "Appelez le 101, ne suivez pas.",
        "de": "BIN-Alarm: gestohlenes Fahrzeug [Marke, Farbe], Kennzeichen [Kennzeichen], Richtung [Richtung]. "
              "Gesehen? 101 anrufen, nicht folgen.",
        "en": "BIN alert: stolen vehicle [make, colour], plate [plate], heading [direction]. Seen it? "
              "Call 101, do not follow."}),
    ("prevention_tip", "Preventietip / Conseil de prévention", Category.PREVENTION, {
        "nl": "BIN-preventie: er zijn de laatste dagen meer inbraken in de buurt. Sluit ramen en deuren, "
              "ook bij kort vertrek.",
        "fr": "Prévention PLP : plus de cambriolages ces derniers jours dans le quartier. Fermez portes et "
              "fenêtres, même pour une courte absence.",
        "de": "BIN-Prävention: In den letzten Tagen gab es mehr Einbrüche in der Gegend. Schließen Sie Fenster "
              "und Türen, auch bei kurzer Abwesenheit.",
        "en": "BIN prevention: more burglaries in the area in recent days. Lock doors and windows, even when "
              "you leave briefly."}),
    ("all_clear", "Einde alarm / Fin d'alerte", Category.FEEDBACK, {
        "nl": "BIN-update: de situatie in [straat] is onder controle. Bedankt voor uw waakzaamheid.",
        "fr": "Mise à jour PLP : la situation à [rue] est sous contrôle. Merci pour votre vigilance.",
        "de": "BIN-Update: Die Lage in [Straße] ist unter Kontrolle. Danke für Ihre Aufmerksamkeit.",
        "en": "BIN update: the situation in [street] is under control. Thank you for your vigilance."}),
]



class TemplateStore(StoreBase):
    """Seeding and editing the alert templates."""

    def seed_templates(self) -> bool:
        """Insert the common BIN templates when there are none (a new database); True when it did.

        Every gateway of a shared queue runs init-db: one that meets another's templates being
        written at the same moment (a duplicate key) leaves them be."""
        try:
            with self.session.begin() as s:
                if s.scalar(select(func.count()).select_from(AlertTemplate)):
                    return False
                for pos, (key, title, category, texts) in enumerate(DEFAULT_TEMPLATES):
                    s.add(AlertTemplate(key=key, title=title, category=category.value, texts=texts, position=pos,
                                        updated_by="system"))
        except IntegrityError:
            return False
        return True

    def update_template(self, template_id: int, title: str, category: str, texts: dict[str, str],
                        actor: str) -> AlertTemplate:
        """Change a template's title, category and texts; raises InputError naming the field."""
        title = (title or "").strip()
        if not title or len(title) > MAX_TITLE:
            raise InputError("title", f"expected 1 to {MAX_TITLE} characters", FormProblem.TITLE_LENGTH,
                             {"max": MAX_TITLE})
        cat = category_of(category)
        clean = {}
        for lang in Language:
            text = (texts.get(lang.value) or "").strip()
            if len(text) > MAX_TEXT:
                raise InputError(f"text_{lang.value}", f"longer than {MAX_TEXT} characters", FormProblem.TEXT_TOO_LONG,
                                 {"n": len(text), "max": MAX_TEXT})
            if (name := other_brackets(text)) is not None:
                raise InputError(f"text_{lang.value}", f"write the placeholder as [{name}]: only square brackets "
                                 "make a field the dispatcher fills in", FormProblem.PLACEHOLDER_BRACKETS,
                                 {"slot": name})
            if text:
                clean[lang.value] = text
        if not clean:
            raise InputError("text_nl", "a template needs a text in at least one language",
                             FormProblem.TEMPLATE_NO_TEXT)
        with self.session.begin() as s:
            tpl = s.get(AlertTemplate, template_id)
            if tpl is None:
                raise NotFound("template", template_id)
            tpl.title, tpl.category, tpl.texts = title, cat.value, clean
            tpl.updated_by, tpl.updated_at = actor, utcnow()
        return tpl
