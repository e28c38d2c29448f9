# Rekeys Ablehnungen auf Deutsch: die `message` neben jedem festen `code`, in den Antworten der
# API (in der Sprache, die Accept-Language der Anfrage verlangt) und im Fenster der App.

error-email-missing = Geben Sie eine E-Mail-Adresse ein.
error-email-malformed = Das sieht nicht wie eine E-Mail-Adresse aus (sie sollte wie name@example.com aussehen).
error-email-too-long = Diese E-Mail-Adresse ist zu lang.
error-email-invisible = Diese E-Mail-Adresse enthält unsichtbare Zeichen (sie können beim Kopieren entstehen); geben Sie sie noch einmal ein.
error-locale-invalid = „{ $locale }“ ist keine Sprache wie en, de, fr, es oder de-AT.
error-time-zone-invalid = „{ $zone }“ ist keine Zeitzone wie Europe/Berlin oder America/New_York.
error-rate-limited = Zu viele Versuche; versuchen Sie es in { $span } erneut.
error-busy = { $product } ist mit anderen Anfragen beschäftigt; versuchen Sie es in { $span } erneut.
error-password-too-short = Verwenden Sie mindestens { $min } Zeichen (dieses hat { $length }).
error-password-too-long = Dieses Passwort ist zu lang: Bleiben Sie unter { $max } Bytes.
error-password-common = Dieses Passwort steht auf einer Liste häufiger oder geleakter Passwörter; wählen Sie etwas weniger Vorhersehbares.
error-password-context = Bilden Sie das Passwort nicht aus Ihrer E-Mail-Adresse oder dem Namen der App.
error-password-pattern = Dieses Passwort ist ein einfaches Muster ({ $pattern ->
        [repeated] dieselben Zeichen wiederholt
        [piece] ein kurzes Stück wiederholt
       *[run] eine Folge aufeinanderfolgender Zeichen
    }); es wäre schnell erraten.
error-token-malformed = Dieser Link ist beschädigt oder unvollständig; kopieren Sie den ganzen Link aus der Mail, oder verwenden Sie stattdessen den Code.
error-token-bad-signature = Dieser Link wurde nicht von dieser { $product }-Installation ausgestellt oder wurde verändert.
error-token-unsigned = Dieser Link ist nicht signiert und daher nicht vertrauenswürdig.
error-token-wrong-algorithm = Dieser Link ist auf eine Weise signiert, die { $product } nicht akzeptiert.
error-token-unknown-key = Dieser Link wurde mit einem Schlüssel signiert, den diese { $product }-Installation nicht kennt; fordern Sie einen neuen Link an.
error-token-wrong-issuer = Dieser Link wurde von einem anderen Dienst ausgestellt, nicht von dieser { $product }-Installation.
error-token-wrong-audience = Dieser Link ist nicht für diese Seite bestimmt (ein Link zum Zurücksetzen und ein Link für ein Konto sind nicht dasselbe).
error-token-expired = Dieser Link ist abgelaufen; fordern Sie einen neuen an.
error-token-not-yet-valid = Dieser Link ist noch nicht gültig; prüfen Sie die Uhr Ihres Computers.
error-token-replaced = Dieser Link wurde durch einen neueren ersetzt; benutzen Sie den Link aus der neuesten Mail.
error-token-used = Dieser Link wurde bereits benutzt; fordern Sie einen neuen an, wenn Sie erneut zurücksetzen müssen.
error-token-stale = Das Passwort wurde geändert, nachdem dieser Link verschickt wurde; der Link funktioniert nicht mehr.
error-code-invalid = Dieser Code funktioniert nicht: Er ist falsch oder nicht mehr gültig (nach 5 Fehlversuchen verfällt ein Code). Sehen Sie in der neuesten Mail nach, oder öffnen Sie den Link darin; falsche Codes wirken sich auf ihn nicht aus.
error-code-burned = Dieser Code wurde zu oft falsch eingegeben und funktioniert nicht mehr; fordern Sie ein neues Zurücksetzen an.
error-bad-credentials = Diese E-Mail-Adresse und dieses Passwort passen zu keinem Konto.
error-password-mismatch = Das ist nicht das Passwort, das bei der Anfrage für dieses Konto gewählt wurde. Wenn Sie kein Konto angefordert haben, ignorieren Sie die Mail; um eines anzulegen, fordern Sie es erneut mit dem gewünschten Passwort an.
error-account-verified = Dieser Link wurde bereits benutzt und das Konto ist bereit: Melden Sie sich mit dem gewählten Passwort an.
error-email-taken = Es gibt bereits ein Konto mit dieser E-Mail-Adresse; melden Sie sich an oder setzen Sie sein Passwort zurück.
error-session-invalid = Sie wurden abgemeldet; melden Sie sich erneut an.
error-store-unavailable = { $product } erreicht seine Datenbank gerade nicht, und es wurde nichts geändert; versuchen Sie es in einer Minute erneut.
error-internal = Bei { $product } ist etwas schiefgegangen, und es wurde nichts geändert; versuchen Sie es erneut, und wenn es wieder passiert, sehen Sie im Protokoll nach.
error-registration-closed = Auf diesem Server können keine neuen Konten angelegt werden; wenden Sie sich an seinen Administrator.
