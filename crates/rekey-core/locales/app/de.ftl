# Das Fenster der Desktop-App, auf Deutsch. Dieselben Nachrichten mit denselben Variablen wie
# en.ftl; das Fenster setzt die Werte selbst als Text ein, daher keine Selektoren.

## Von mehreren Seiten genutzt

app-email = E-Mail
app-password = Passwort
app-new-password = Neues Passwort
app-new-password-again = Neues Passwort wiederholen
app-code = Code
app-show = Anzeigen
app-hide = Verbergen
app-show-password = Passwort anzeigen
app-hide-password = Passwort verbergen
app-back = Zurück
app-back-to-signin = Zurück zur Anmeldung
app-settings = Einstellungen
app-set-new-password = Neues Passwort setzen
app-open-mailbox = Lokales Postfach öffnen
app-check-mail-title = Prüfen Sie Ihre Mails
app-come-back = Öffnen Sie den Link in der Mail, um zu { $product } zurückzukehren, oder geben Sie hier den Code aus der Mail ein.
app-checking-link = Link wird geprüft…
app-link-until = Dieser Link funktioniert bis { $until }.
app-finish-account = Konto fertig einrichten
app-chosen-password-again = Das Passwort, das Sie dafür gewählt haben
app-why-password-again = Noch einmal gefragt, damit nur die Person, die es gewählt hat, das Konto abschließen kann.
app-account-ready = Ihr Konto ist bereit. Melden Sie sich mit dem gewählten Passwort an.
app-something-wrong = Etwas ist schiefgegangen; versuchen Sie es noch einmal.

## Anmelden und Konto anlegen

app-signin-title = Anmelden
app-signin-submit = Anmelden
app-forgot-link = Passwort vergessen?
app-register-link = Konto anlegen
app-register-title = Konto anlegen
app-register-submit = Konto anlegen
app-account-created = Konto angelegt. Melden Sie sich mit Ihrem neuen Passwort an.
app-check-register-lead = Eine Mail mit einem Link zum Abschließen des Kontos ist an { $email } unterwegs (es sei denn, die Adresse hat schon ein Konto: Dann wird dessen Inhaber benachrichtigt).
app-chosen-password = Das Passwort, das Sie gewählt haben

## Passwort vergessen, Mails prüfen, der eingegebene Code

app-forgot-title = Passwort zurücksetzen
app-forgot-lead = Geben Sie die E-Mail-Adresse Ihres Kontos ein. Wenn es zu ihr ein Konto gibt, senden wir einen Link und einen Code.
app-forgot-submit = Mail zum Zurücksetzen senden
app-check-lead = Wenn { $email } ein Konto hat, ist eine Mail dorthin unterwegs.
app-enter-code-instead = Stattdessen einen Code eingeben
app-send-again = Erneut senden
app-send-again-in = Erneut senden in { $seconds } s
app-sent-again = Wenn { $email } ein Konto hat, ist eine weitere Mail unterwegs.
app-mail-to-mailbox = Mails gehen an das lokale Postfach auf diesem Computer.
app-mail-from-server = Mails kommen vom Server Ihrer Organisation ({ $where }). Wenn keine ankommt, sehen Sie in Ihrem Spam-Ordner nach und wenden Sie sich dann an Ihren Administrator.
app-mail-through = Mails werden über den Mailserver { $where } gesendet.
app-mail-waiting = Mails warten auf den Versand: { $problem }
app-mail-undelivered = Einige Mails konnten nicht zugestellt werden (nicht zugestellte Nachrichten: { $count }).
app-code-title = Code eingeben
app-code-lead = Geben Sie den Code aus der Mail zum Zurücksetzen ein und wählen Sie ein neues Passwort.
app-code-hint = 8 Buchstaben und Ziffern, wie in der Mail. Bindestrich sowie Groß- und Kleinschreibung spielen keine Rolle.

## Die Seite zum Zurücksetzen, die ein Link öffnet, und danach

app-reset-title = Neues Passwort
app-reset-for = Wählen Sie ein neues Passwort für { $email }. Dieser Link funktioniert bis { $until }.
app-new-link = Neuen Link anfordern
app-done-title = Passwort geändert
app-done-lead = Ihr Passwort wurde geändert. Melden Sie sich mit dem neuen Passwort an.

## Ein Konto abschließen

app-verify-title = Konto fertig einrichten
app-verify-for = Schließen Sie das Konto für { $email } ab. Dieser Link funktioniert bis { $until }.

## Angemeldet

app-home-title = Sie sind angemeldet
app-home-lead = Angemeldet als { $email }.
app-change-title = Passwort ändern
app-current-password = Aktuelles Passwort
app-change-submit = Passwort ändern
app-password-changed = Ihr Passwort wurde geändert.
app-sign-out = Abmelden
app-signed-out = Sie sind abgemeldet.
app-mail-language = Sprache Ihrer Mails
app-mail-language-hint = Die Mails zu diesem Konto (Zurücksetzen, Passwortänderungen) werden in dieser Sprache geschrieben.
app-mail-language-save = Speichern
app-mail-language-saved = Ihre Mails werden in dieser Sprache geschrieben: { $language }.

## Prüfungen vor dem Absenden

app-enter-email = Geben Sie Ihre E-Mail-Adresse ein.
app-email-like = Geben Sie eine E-Mail-Adresse wie name@example.com ein.
app-enter-password = Geben Sie Ihr Passwort ein.
app-enter-new-password = Geben Sie ein neues Passwort ein.
app-at-least = Verwenden Sie mindestens { $min } Zeichen.
app-type-again = Geben Sie das neue Passwort noch einmal ein.
app-not-same = Die beiden Passwörter stimmen nicht überein.
app-enter-code = Geben Sie den Code aus der Mail ein.
app-code-like = Der Code hat 8 Buchstaben und Ziffern, etwa ABCD-EFGH.
app-type-chosen-password = Geben Sie das Passwort ein, das Sie für dieses Konto gewählt haben.
app-enter-current-password = Geben Sie Ihr aktuelles Passwort ein.

## Passwortstärke

app-strength = Stärke: { $word }
app-strength-0 = Sehr schwach
app-strength-1 = Schwach
app-strength-2 = Mittel
app-strength-3 = Stark
app-strength-4 = Sehr stark

## Einstellungen

app-settings-server = { $product }-Server Ihrer Organisation
app-settings-server-hint = Überlassen Sie das Ihrem Administrator, wenn Sie unsicher sind. Ohne Server liegen die Konten auf diesem Computer.
app-settings-ca = CA-Datei (optional)
app-settings-ca-hint = Nur für einen Server, dessen Zertifikat von der eigenen CA Ihrer Organisation stammt.
app-settings-test = Verbindung testen
app-settings-connect = Verbinden
app-settings-local = Nur diesen Computer verwenden
app-settings-on-server = Die Konten liegen auf dem Server Ihrer Organisation, { $url }.
app-settings-on-computer = Die Konten liegen auf diesem Computer, im eigenen Speicher von { $product }.
app-settings-enter-url = Geben Sie die Adresse des Servers ein, etwa https://rekey.example.com.
app-settings-trying = Server wird kontaktiert…
app-settings-answers = Der Server antwortet: { $product } { $version }.
app-settings-connected = Verbunden mit { $url }. Melden Sie sich mit Ihrem Konto auf diesem Server an.
app-settings-local-again = Die Konten liegen wieder auf diesem Computer.
app-language = Sprache dieses Fensters
app-language-system = Wie das System ({ $language })

## Die Fußzeile

app-footer-server = { $product } { $version } · Verbunden mit { $url }
app-footer-local = { $product } { $version } · Dieser Computer · Mail: { $where }
app-footer-mailbox = lokales Postfach
app-footer-mail-server = Mailserver

## Das lokale Postfach

app-mailbox-title = Lokales Postfach
app-mailbox-lead = Es ist kein Mailserver eingerichtet, daher bewahrt { $product } seine Mails hier auf.
app-mailbox-refresh = Aktualisieren
app-mailbox-messages = Nachrichten
app-mailbox-empty = Noch keine Nachrichten.
app-mailbox-no-subject = (kein Betreff)
app-mailbox-to-date = An { $to } · { $date }
app-mailbox-to = An
app-mailbox-date = Datum
app-mailbox-open-in = In { $product } öffnen

## Der Name dieser Sprache, in ihr selbst (für die Sprachauswahl)

app-language-name = Deutsch

## Die eigenen Ablehnungen der App (die des Kerns stehen in errors/)

app-error-no-settings-folder = Auf diesem Computer gibt es keinen Ordner für Einstellungen (kein Home-Verzeichnis).
app-error-settings-unwritable = Die Einstellungen konnten nicht in { $file } gespeichert werden ({ $problem }); prüfen Sie, ob der Ordner Ihnen gehört.
app-error-server-url = Diese Serveradresse kann nicht verwendet werden: { $problem }.
app-error-language-unknown = Für die Sprache „{ $language }“ gibt es keine Texte.
app-error-config = Die Konfiguration von { $product } kann nicht verwendet werden: { $problem }
app-error-restart = In der App ist etwas schiefgegangen; starten Sie sie neu.
app-error-proof-missing = Öffnen Sie den Link aus der Mail, oder geben Sie Ihre E-Mail-Adresse und den Code ein.
app-error-link = { $why } Verwenden Sie den Link aus der neuesten Mail zum Zurücksetzen, oder geben Sie stattdessen den Code ein.
app-error-link-not-reset = Dieser { $product }-Link führt nicht zum Zurücksetzen eines Passworts.
app-error-link-too-long = Dieser Link ist viel zu lang für einen { $product }-Link.
app-error-link-spaces = Dieser Link enthält Leerzeichen oder Zeilenumbrüche.
app-error-link-unreadable = Dieser Link konnte nicht gelesen werden.
app-error-link-not-ours = Das ist kein { $product }-Link.
app-error-link-extra = Dieser { $product }-Link hat Teile, die ein Link zum Zurücksetzen nie hat.
app-error-link-two-tokens = Dieser Link enthält zwei Tokens.
app-error-link-no-token = Dieser Link enthält kein Token zum Zurücksetzen.
app-error-link-damaged = Das Token in diesem Link ist beschädigt; vielleicht hat das Mailprogramm es abgeschnitten.
app-error-other-issuer-server = Dieser Link wurde von { $maker } erstellt, nicht von dem Server, mit dem diese App verbunden ist ({ $url }). Öffnen Sie den Link aus einer Mail, die der Server Ihrer Organisation gesendet hat, oder wenden Sie sich an Ihren Administrator.
app-error-other-issuer-local = Dieser Link wurde von { $maker } erstellt, aber diese App verwendet ihren eigenen Speicher auf diesem Computer. Um den Server Ihrer Organisation zu verwenden, tragen Sie seine Adresse in den Einstellungen ein (Ihr Administrator nennt sie Ihnen).
app-error-maker-local = einer anderen { $product }-Installation ohne öffentliche Adresse, etwa dem eigenen Speicher der { $product }-App auf einem Computer
app-error-maker-server = einem anderen { $product }-Server ({ $issuer })
app-error-ca-unreadable = Die CA-Datei { $file } kann nicht gelesen werden ({ $problem }); prüfen Sie server_ca_file.
app-error-ca-empty = Die CA-Datei { $file } enthält kein PEM-Zertifikat; prüfen Sie server_ca_file.
app-error-server-setup = Die Verbindung zum Server kann nicht eingerichtet werden: { $problem }
app-error-server-not-rekey = { $url } hat geantwortet, aber nicht so wie ein { $product }-Server; prüfen Sie die Adresse, oder wenden Sie sich an Ihren Administrator.
app-error-server-too-old = Der { $product }-Server unter { $url } ist zu alt für { $what }; bitten Sie Ihren Administrator, ihn zu aktualisieren.
app-error-server-error = Beim { $product }-Server unter { $url } ist ein Problem aufgetreten (HTTP { $status }); versuchen Sie es gleich noch einmal.
app-error-server-untrusted = Dem { $product }-Server unter { $url } kann nicht vertraut werden: { $why }. Es wurde nichts gesendet. Bitten Sie Ihren Administrator um die CA-Datei und setzen Sie server_ca_file in den Einstellungen.
app-error-certificate-expired = Sein Zertifikat ist abgelaufen
app-error-certificate-name = Sein Zertifikat gilt für einen anderen Namen als { $host }
app-error-certificate-unknown = Sein Zertifikat ist keines, dem dieser Computer vertraut
app-error-server-slow = Der { $product }-Server unter { $url } hat nicht rechtzeitig geantwortet; versuchen Sie es gleich noch einmal.
app-error-server-unreachable = Der { $product }-Server unter { $url } ist nicht erreichbar. Prüfen Sie Ihre Netzwerkverbindung; wenn das weiterhin passiert, wenden Sie sich an Ihren Administrator.
app-error-switched = Der Server wurde inzwischen in den Einstellungen geändert; melden Sie sich erneut an.
app-error-mailbox-server = Die Mail kommt vom Server Ihrer Organisation; sehen Sie in Ihrem Mailprogramm nach.
app-error-mailbox-smtp = Die Mail geht an einen Mailserver, nicht in das lokale Postfach; sehen Sie in Ihrem Mailprogramm nach.
app-error-mailbox-unreadable = Das lokale Postfach { $folder } kann nicht gelesen werden; prüfen Sie, ob der Ordner existiert und Ihnen gehört.
app-error-message-missing = Diese Nachricht gibt es im lokalen Postfach nicht.
app-error-message-gone = Diese Nachricht ist nicht mehr im lokalen Postfach.
app-error-message-unreadable = Diese Nachricht konnte nicht gelesen werden.
app-error-this-app = diese App
app-mail-language-default = Die Voreinstellung von { $product }
