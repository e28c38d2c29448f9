# Les refus de Rekey en français : le `message` à côté de chaque `code` stable, dans les réponses
# de l’API (dans la langue que demande l’Accept-Language de la requête) et dans la fenêtre de l’application.

error-email-missing = Saisissez une adresse e-mail.
error-email-malformed = Cela ne ressemble pas à une adresse e-mail (elle devrait ressembler à name@example.com).
error-email-too-long = Cette adresse e-mail est trop longue.
error-email-invisible = Cette adresse e-mail contient des caractères invisibles (ils peuvent venir d’un copier-coller) ; saisissez-la à nouveau.
error-locale-invalid = « { $locale } » n’est pas une langue comme en, de, fr, es ou de-AT.
error-time-zone-invalid = « { $zone } » n’est pas un fuseau horaire comme Europe/Paris ou America/New_York.
error-rate-limited = Trop de tentatives ; réessayez dans { $span }.
error-busy = { $product } est occupé par d’autres demandes ; réessayez dans { $span }.
error-password-too-short = Utilisez au moins { $min } caractères (celui-ci en a { $length }).
error-password-too-long = Ce mot de passe est trop long : restez sous { $max } octets.
error-password-common = Ce mot de passe figure sur une liste de mots de passe courants ou divulgués ; choisissez quelque chose de moins prévisible.
error-password-context = Ne construisez pas le mot de passe à partir de votre adresse e-mail ou du nom de l’application.
error-password-pattern = Ce mot de passe est un motif simple ({ $pattern ->
        [repeated] les mêmes caractères répétés
        [piece] un court fragment répété
       *[run] une suite de caractères consécutifs
    }) ; il serait vite deviné.
error-token-malformed = Ce lien est endommagé ou incomplet ; copiez le lien entier depuis le mail, ou utilisez plutôt le code.
error-token-bad-signature = Ce lien n’a pas été émis par cette installation de { $product } ou a été modifié.
error-token-unsigned = Ce lien n’est pas signé ; on ne peut donc pas s’y fier.
error-token-wrong-algorithm = Ce lien est signé d’une manière que { $product } n’accepte pas.
error-token-unknown-key = Ce lien a été signé avec une clé que cette installation de { $product } ne connaît pas ; demandez un nouveau lien.
error-token-wrong-issuer = Ce lien a été émis par un autre service, pas par cette installation de { $product }.
error-token-wrong-audience = Ce lien n’est pas destiné à cette page (un lien de réinitialisation et un lien de compte ne sont pas la même chose).
error-token-expired = Ce lien a expiré ; demandez-en un nouveau.
error-token-not-yet-valid = Ce lien n’est pas encore valable ; vérifiez l’horloge de votre ordinateur.
error-token-replaced = Ce lien a été remplacé par un plus récent ; utilisez le lien du dernier mail.
error-token-used = Ce lien a déjà été utilisé ; demandez-en un nouveau si vous devez réinitialiser à nouveau.
error-token-stale = Le mot de passe a été modifié après l’envoi de ce lien ; le lien ne fonctionne plus.
error-code-invalid = Ce code ne fonctionne pas : il est erroné ou n’est plus valable (un code est retiré après 5 essais erronés). Consultez le dernier mail, ou ouvrez le lien qu’il contient, que les codes erronés n’affectent pas.
error-code-burned = Ce code a été saisi trop de fois de façon erronée et ne fonctionne plus ; demandez une nouvelle réinitialisation.
error-bad-credentials = Cette adresse e-mail et ce mot de passe ne correspondent à aucun compte.
error-password-mismatch = Ce n’est pas le mot de passe choisi lors de la demande de ce compte. Si vous n’avez pas demandé de compte, ignorez le mail ; pour en créer un, refaites la demande avec le mot de passe souhaité.
error-account-verified = Ce lien a déjà été utilisé et le compte est prêt : connectez-vous avec le mot de passe choisi.
error-email-taken = Un compte avec cette adresse e-mail existe déjà ; connectez-vous, ou réinitialisez son mot de passe.
error-session-invalid = Vous avez été déconnecté ; reconnectez-vous.
error-store-unavailable = { $product } ne peut pas joindre sa base de données pour le moment et rien n’a été modifié ; réessayez dans une minute.
error-internal = Une erreur s’est produite du côté de { $product } et rien n’a été modifié ; réessayez, et si cela se reproduit, consultez le journal.
error-registration-closed = Ce serveur ne permet pas de créer de nouveaux comptes ; adressez-vous à son administrateur.
