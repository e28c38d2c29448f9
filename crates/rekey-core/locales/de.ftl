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
time = { $hour }:{ $minute } { $zone } am { $day }. { $month } { $year }
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

## Die Landeseiten von rekeyd (hinter den gemailten https-Links)

page-checking = Ihr Link wird geprüft…
page-email = E-Mail
page-code = Code aus der Mail
page-open-app = In { $product } öffnen
page-unreachable = Der Server war nicht richtig erreichbar; versuchen Sie es noch einmal.
page-reset-title = Passwort zurücksetzen
page-reset-or-here = oder wählen Sie das neue Passwort hier:
page-reset-for = Wählen Sie ein neues Passwort für { $address }. Dieser Link funktioniert bis { $until }.
page-reset-ask-again = Sie können in der App einen neuen Link anfordern.
page-reset-code-form = Geben Sie Ihre E-Mail, den Code aus der Mail und ein neues Passwort ein.
page-new-password = Neues Passwort
page-new-password-again = Neues Passwort wiederholen
page-show-passwords = Passwörter anzeigen
page-strength = Passwortstärke
page-strength-0 = Sehr schwach
page-strength-1 = Schwach
page-strength-2 = Mittel
page-strength-3 = Stark
page-strength-4 = Sehr stark
page-reset-submit = Neues Passwort setzen
page-not-same = Die beiden Passwörter stimmen nicht überein.
page-reset-done = Ihr Passwort wurde geändert. Melden Sie sich mit dem neuen Passwort an.
page-verify-title = Konto fertig einrichten
page-verify-or-here = oder hier abschließen:
page-verify-for = Schließen Sie das Konto für { $address } ab. Dieser Link funktioniert bis { $until }.
page-verify-code-form = Geben Sie Ihre E-Mail und den Code aus der Mail ein.
page-verify-password = Das Passwort, das Sie dafür gewählt haben
page-verify-why = Noch einmal gefragt, damit nur die Person, die es gewählt hat, das Konto abschließen kann.
page-verify-submit = Konto fertig einrichten
page-verify-done = Ihr Konto { $address } ist bereit. Melden Sie sich mit dem gewählten Passwort an.
page-error-token_used = Dieser Link wurde bereits benutzt; fordern Sie einen neuen an, wenn Sie erneut zurücksetzen müssen.
page-error-token_replaced = Dieser Link wurde durch einen neueren ersetzt; benutzen Sie den Link aus der neuesten Mail.
page-error-token_stale = Das Passwort wurde geändert, nachdem dieser Link verschickt wurde; der Link funktioniert nicht mehr.
page-error-token_expired = Dieser Link ist abgelaufen; fordern Sie einen neuen an.
page-error-code_invalid = Dieser Code funktioniert nicht: Er ist falsch oder nicht mehr gültig. Sehen Sie in der neuesten Mail nach, oder öffnen Sie den Link darin.
page-error-code_burned = Dieser Code wurde zu oft falsch eingegeben und funktioniert nicht mehr; fordern Sie ein neues Zurücksetzen an.
page-error-password_mismatch = Das ist nicht das Passwort, das bei der Anfrage für dieses Konto gewählt wurde.
page-error-account_verified = Dieser Link wurde bereits benutzt und das Konto ist bereit: Melden Sie sich mit dem gewählten Passwort an.
page-error-rate_limited = Zu viele Versuche; warten Sie ein paar Minuten und versuchen Sie es erneut.
page-error-busy = Der Server ist mit anderen Anfragen beschäftigt; versuchen Sie es gleich noch einmal.
