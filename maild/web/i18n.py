"""The web's words in Swedish (the default) and English."""

from __future__ import annotations

from collections.abc import Callable

_WORDS: dict[str, tuple[str, str]] = {
    "queues": ("Köer", "Queues"),
    "tickets": ("Ärenden", "Tickets"),
    "admin": ("Administration", "Administration"),
    "log_in": ("Logga in", "Log in"),
    "log_out": ("Logga ut", "Log out"),
    "user": ("Användare", "User"),
    "password": ("Lösenord", "Password"),
    "login_failed": ("Fel användarnamn eller lösenord.", "Wrong user name or password."),
    "login_throttled": ("För många misslyckade inloggningar. Försök igen om en stund.",
                        "Too many failed log-ins. Try again in a while."),
    "queue": ("Kö", "Queue"),
    "new": ("Nya", "New"),
    "open": ("Öppna", "Open"),
    "waiting": ("Väntar på kund", "Waiting on customer"),
    "answered": ("Besvarade", "Answered"),
    "overdue": ("Försenade", "Overdue"),
    "due_today": ("Förfaller i dag", "Due today"),
    "number": ("Nummer", "Number"),
    "status": ("Status", "Status"),
    "priority": ("Prioritet", "Priority"),
    "customer": ("Kund", "Customer"),
    "subject": ("Ämne", "Subject"),
    "from": ("Från", "From"),
    "to": ("Till", "To"),
    "due": ("Svar senast", "Response due"),
    "assignee": ("Handläggare", "Assignee"),
    "missing": ("Saknas", "Missing"),
    "private": ("Privat avsändare", "Private sender"),
    "include_closed": ("Visa stängda", "Show closed"),
    "filter": ("Filtrera", "Filter"),
    "all": ("Alla", "All"),
    "showing": ("Visar {shown} av {total}", "Showing {shown} of {total}"),
    "no_tickets": ("Inga ärenden.", "No tickets."),
    "conversation": ("Konversation", "Conversation"),
    "attachments": ("Bilagor", "Attachments"),
    "from_html": ("(HTML-brev, visas som text)", "(HTML mail, shown as text)"),
    "note": ("Intern anteckning", "Internal note"),
    "decision": ("Beslut", "Decision record"),
    "sla": ("Svarstid", "SLA clock"),
    "business_left": ("Kvar av arbetstiden", "Business time left"),
    "answered_at": ("Besvarat", "Answered"),
    "warned_at": ("Varning skickad", "Warning sent"),
    "breached": ("Överskriden", "Breached"),
    "resolution_due": ("Lösning senast", "Resolution due"),
    "events": ("Händelser", "Event trail"),
    "actions": ("Åtgärder", "Actions"),
    "assign": ("Tilldela", "Assign"),
    "reply": ("Svara kunden", "Reply to the customer"),
    "send": ("Skicka", "Send"),
    "add_note": ("Lägg till anteckning", "Add note"),
    "close": ("Stäng med lösning", "Close with resolution"),
    "resolution": ("Lösning", "Resolution"),
    "reopen": ("Öppna igen", "Reopen"),
    "reason": ("Anledning", "Reason"),
    "change_priority": ("Ändra prioritet", "Change priority"),
    "not_entitled": ("Ej behörig avsändare", "Sender not entitled"),
    "review": ("Utvärdering efter incidenten", "Post-incident review"),
    "review_required": ("krävs för den här prioriteten", "required at this priority"),
    "entitle": ("Ge avtalets åtagande", "Give the agreement's commitment"),
    "entitle_help": ("Avsändaren är inte kontrollerad: ärendet har ingen svarstid ännu.",
                     "The sender is not verified: the ticket has no response time yet."),
    "forbidden": ("Du har inte behörighet till det här ärendet.",
                  "You may not see this ticket."),
    "not_found": ("Hittades inte.", "Not found."),
    "form_expired": ("Formuläret har gått ut eller kom inte från maild. Ladda om sidan och "
                     "försök igen.", "The form has expired or did not come from maild. "
                     "Reload the page and try again."),
    "admins_only": ("Bara administratörer har tillgång till den här sidan.",
                    "Only administrators may open this page."),
    "not_your_queue": ("Du är inte med i den kön.", "You are not a member of that queue."),
    "sso_unknown": ("Ditt konto finns inte i maild. Be en administratör lägga till dig.",
                    "Your account does not exist in maild. Ask an administrator to add you."),
    "done": ("Klart.", "Done."),
    "customers": ("Kunder", "Customers"),
    "domains": ("Domäner", "Domains"),
    "contacts": ("Kontakter", "Contacts"),
    "policy": ("Avtal", "Policy"),
    "add": ("Lägg till", "Add"),
    "remove": ("Ta bort", "Remove"),
    "suspend": ("Stäng av", "Suspend"),
    "reactivate": ("Återaktivera", "Reactivate"),
    "explain": ("Förklara en adress eller ett brev", "Explain an address or a mail"),
    "address": ("Adress", "Address"),
    "raw_mail": ("Eller klistra in ett helt brev", "Or paste a whole mail"),
    "rules_check": ("Regelkontroll", "Rules check"),
    "rules_ok": ("Reglerna är felfria", "The rules are fine"),
    "changes": ("Ändringar", "Changes"),
    "name": ("Namn", "Name"),
    "title": ("Titel", "Title"),
    "time_zone": ("Tider i svensk tid (Europe/Stockholm)", "Times in Swedish time "
                  "(Europe/Stockholm)"),
    "language": ("In English", "På svenska"),
    "none": ("ingen", "none"),
    "yes": ("ja", "yes"),
    "no": ("nej", "no"),
    "updated": ("Uppdateras automatiskt", "Updates by itself"),
}


def translator(language: str) -> Callable[..., str]:
    """`t(key, **values)` in `language` (sv or en); an unknown key shows as itself."""
    index = 1 if language == "en" else 0

    def t(key: str, **values: object) -> str:
        words = _WORDS.get(key)
        text = words[index] if words else key
        return text.format(**values) if values else text

    return t
