# Rekeys Mails auf Deutsch. Dieselben Nachrichten mit denselben Variablen wie en.ftl.

## Zeiten und Spannen

month = { $month ->
    [1] Januar
    [2] Februar
    [3] März
    [4] April
    [5] Mai
    [6] Juni
    [7] Juli
    [8] August
    [9] September
    [10] Oktober
    [11] November
   *[12] Dezember
}
# 14:05 UTC am 26. November 2026
time-utc = { $hour }:{ $minute } UTC am { $day }. { $month } { $year }
span-minutes = { $n ->
    [one] { $n } Minute
   *[other] { $n } Minuten
}
span-hours = { $n ->
    [one] { $n } Stunde
   *[other] { $n } Stunden
}
span-hours-minutes = { $hours } { $minutes }

## Teile jeder Mail mit Link und Code

link-browser = Oder öffnen Sie ihn in einem Webbrowser:
link-code = Wenn sich der Link nicht öffnet, wählen Sie in { $product } „Stattdessen einen Code eingeben“ und tippen Sie:
link-once = Link und Code funktionieren einmal, bis { $until } ({ $span } nach Ihrer Anfrage).
support = Brauchen Sie Hilfe? { $contact }

## Die Mail zum Zurücksetzen

reset-subject = Setzen Sie Ihr { $product }-Passwort zurück
reset-lead = Jemand hat verlangt, das Passwort des { $product }-Kontos für { $address } zurückzusetzen.
reset-open = Um ein neues Passwort zu wählen, öffnen Sie diesen Link auf dem Computer, auf dem { $product } installiert ist:
reset-app-button = { $product } öffnen und Passwort zurücksetzen
reset-browser-button = Im Browser zurücksetzen
reset-ignore = Wenn Sie das nicht verlangt haben, ignorieren Sie diese Mail: Ihr Passwort bleibt, wie es ist, und niemand sonst kann diesen Link benutzen.

## Die Mail, die ein neues Konto abschließt

verify-subject = Schließen Sie die Einrichtung Ihres { $product }-Kontos ab
verify-lead = Jemand hat verlangt, ein { $product }-Konto für { $address } anzulegen.
verify-open = Um abzuschließen, öffnen Sie diesen Link auf dem Computer, auf dem { $product } installiert ist:
verify-app-button = { $product } öffnen und abschließen
verify-browser-button = Im Browser abschließen
verify-until-then = Bis dahin kann sich das Konto nicht anmelden.
verify-ignore = Wenn Sie das nicht verlangt haben, ignorieren Sie diese Mail: Für diese Adresse wird kein Konto angelegt.

## Wenn jemand eine Adresse registrieren will, die schon ein Konto hat

exists-subject = Sie haben bereits ein { $product }-Konto
exists-lead = Jemand hat am { $time } versucht, ein { $product }-Konto für { $address } anzulegen, aber diese Adresse hat schon eins.
exists-if-you = Wenn Sie es waren: Melden Sie sich mit Ihrem Passwort an, oder wählen Sie in { $product } „Passwort vergessen“, um es zurückzusetzen.
exists-if-not = Wenn Sie es nicht waren, können Sie diese Mail ignorieren: Es wurde nichts geändert.

## Nach einer Passwortänderung

changed-subject = Ihr { $product }-Passwort wurde geändert
changed-lead = Das Passwort des { $product }-Kontos für { $address } wurde am { $time } geändert ({ $how }).
changed-how-in-app = in { $product } geändert
changed-how-link = mit dem gemailten Link zurückgesetzt
changed-how-code = mit dem gemailten Code zurückgesetzt
changed-signed-out = Sie wurden überall abgemeldet; melden Sie sich mit dem neuen Passwort wieder an.
changed-not-you = Waren Sie das nicht?
changed-act = Jemand hat vielleicht Zugriff auf Ihre Mails. Setzen Sie Ihr Passwort sofort zurück („Passwort vergessen“ in { $product }) und sichern Sie Ihr Mailkonto.

## rekeyd mail test

test-subject = Testnachricht von { $product }
test-body = Dies ist eine Testnachricht von { $product }, gesendet am { $time }. Der Mailversand funktioniert.
