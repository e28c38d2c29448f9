# La fenêtre de l’application de bureau, en français. Les mêmes messages, avec les mêmes
# variables, que en.ftl ; la fenêtre insère elle-même les valeurs comme texte, donc sans sélecteurs.

## Commun à plusieurs pages

app-email = Adresse e-mail
app-password = Mot de passe
app-new-password = Nouveau mot de passe
app-new-password-again = Confirmer le nouveau mot de passe
app-code = Code
app-show = Afficher
app-hide = Masquer
app-show-password = Afficher le mot de passe
app-hide-password = Masquer le mot de passe
app-back = Retour
app-back-to-signin = Retour à la connexion
app-settings = Paramètres
app-set-new-password = Définir le nouveau mot de passe
app-open-mailbox = Ouvrir la boîte aux lettres locale
app-check-mail-title = Consultez vos mails
app-come-back = Ouvrez le lien du mail pour revenir à { $product }, ou saisissez ici le code reçu par mail.
app-checking-link = Vérification du lien…
app-link-until = Ce lien fonctionne jusqu’au { $until }.
app-finish-account = Terminer la création du compte
app-chosen-password-again = Le mot de passe que vous avez choisi pour ce compte
app-why-password-again = Demandé à nouveau pour que seule la personne qui l’a choisi puisse terminer le compte.
app-account-ready = Votre compte est prêt. Connectez-vous avec le mot de passe choisi.
app-something-wrong = Une erreur s’est produite ; réessayez.

## Se connecter et créer un compte

app-signin-title = Se connecter
app-signin-submit = Se connecter
app-forgot-link = Mot de passe oublié ?
app-register-link = Créer un compte
app-register-title = Créer un compte
app-register-submit = Créer le compte
app-account-created = Compte créé. Connectez-vous avec votre nouveau mot de passe.
app-check-register-lead = Un mail avec un lien pour terminer le compte est en route vers { $email } (sauf si l’adresse a déjà un compte : son titulaire en est alors averti).
app-chosen-password = Le mot de passe que vous avez choisi

## Mot de passe oublié, consulter ses mails, le code saisi

app-forgot-title = Réinitialiser votre mot de passe
app-forgot-lead = Saisissez l’adresse e-mail de votre compte. Si elle a un compte, nous enverrons un lien et un code.
app-forgot-submit = Envoyer le mail de réinitialisation
app-check-lead = Si { $email } a un compte, un mail est en route vers cette adresse.
app-enter-code-instead = Saisir un code à la place
app-send-again = Renvoyer
app-send-again-in = Renvoyer dans { $seconds } s
app-sent-again = Si { $email } a un compte, un autre mail est en route.
app-mail-to-mailbox = Les mails arrivent dans la boîte aux lettres locale de cet ordinateur.
app-mail-from-server = Les mails viennent du serveur de votre organisation ({ $where }). Si rien n’arrive, regardez dans votre dossier de spam, puis adressez-vous à votre administrateur.
app-mail-through = Les mails sont envoyés via le serveur de messagerie { $where }.
app-mail-waiting = Des mails attendent d’être envoyés : { $problem }
app-mail-undelivered = Certains mails n’ont pas pu être remis (messages non remis : { $count }).
app-code-title = Saisissez votre code
app-code-lead = Saisissez le code du mail de réinitialisation et choisissez un nouveau mot de passe.
app-code-hint = 8 lettres et chiffres, comme dans le mail. Le tiret et la casse n’ont pas d’importance.

## La page de réinitialisation qu’ouvre un lien, et la suite

app-reset-title = Nouveau mot de passe
app-reset-for = Choisissez un nouveau mot de passe pour { $email }. Ce lien fonctionne jusqu’au { $until }.
app-new-link = Demander un nouveau lien
app-done-title = Mot de passe modifié
app-done-lead = Votre mot de passe a été modifié. Connectez-vous avec le nouveau mot de passe.

## Terminer un compte

app-verify-title = Terminer la création de votre compte
app-verify-for = Terminez le compte de { $email }. Ce lien fonctionne jusqu’au { $until }.

## Connecté

app-home-title = Vous êtes connecté
app-home-lead = Connecté en tant que { $email }.
app-change-title = Changer de mot de passe
app-current-password = Mot de passe actuel
app-change-submit = Changer le mot de passe
app-password-changed = Votre mot de passe a été modifié.
app-sign-out = Se déconnecter
app-signed-out = Vous êtes déconnecté.
app-mail-language = Langue de vos mails
app-mail-language-hint = Les mails concernant ce compte (réinitialisations, changements de mot de passe) sont rédigés dans cette langue.
app-mail-language-save = Enregistrer
app-mail-language-saved = Vos mails seront rédigés dans cette langue : { $language }.

## Vérifications avant l’appel

app-enter-email = Saisissez votre adresse e-mail.
app-email-like = Saisissez une adresse e-mail comme name@example.com.
app-enter-password = Saisissez votre mot de passe.
app-enter-new-password = Saisissez un nouveau mot de passe.
app-at-least = Utilisez au moins { $min } caractères.
app-type-again = Saisissez à nouveau le nouveau mot de passe.
app-not-same = Les deux mots de passe ne sont pas identiques.
app-enter-code = Saisissez le code reçu par mail.
app-code-like = Le code comporte 8 lettres et chiffres, comme ABCD-EFGH.
app-type-chosen-password = Saisissez le mot de passe que vous avez choisi pour ce compte.
app-enter-current-password = Saisissez votre mot de passe actuel.

## Robustesse du mot de passe

app-strength = Robustesse : { $word }
app-strength-0 = Très faible
app-strength-1 = Faible
app-strength-2 = Moyen
app-strength-3 = Robuste
app-strength-4 = Très robuste

## Paramètres

app-settings-server = Serveur { $product } de votre organisation
app-settings-server-hint = En cas de doute, laissez ce réglage à votre administrateur. Sans serveur, les comptes sont stockés sur cet ordinateur.
app-settings-ca = Fichier d’AC (facultatif)
app-settings-ca-hint = Uniquement pour un serveur dont le certificat provient de l’autorité de certification (AC) propre à votre organisation.
app-settings-test = Tester la connexion
app-settings-connect = Connecter
app-settings-local = Utiliser cet ordinateur uniquement
app-settings-on-server = Les comptes sont stockés sur le serveur de votre organisation, { $url }.
app-settings-on-computer = Les comptes sont stockés sur cet ordinateur, dans le stockage propre de { $product }.
app-settings-enter-url = Saisissez l’adresse du serveur, comme https://rekey.example.com.
app-settings-trying = Tentative de connexion au serveur…
app-settings-answers = Le serveur répond : { $product } { $version }.
app-settings-connected = Connecté à { $url }. Connectez-vous avec votre compte sur ce serveur.
app-settings-local-again = Les comptes sont de nouveau stockés sur cet ordinateur.
app-language = Langue de cette fenêtre
app-language-system = Comme le système ({ $language })

## Le pied de page

app-footer-server = { $product } { $version } · Connecté à { $url }
app-footer-local = { $product } { $version } · Cet ordinateur · Mail : { $where }
app-footer-mailbox = boîte aux lettres locale
app-footer-mail-server = serveur de messagerie

## La boîte aux lettres locale

app-mailbox-title = Boîte aux lettres locale
app-mailbox-lead = Aucun serveur de messagerie n’est configuré, donc { $product } garde ses mails ici.
app-mailbox-refresh = Actualiser
app-mailbox-messages = Messages
app-mailbox-empty = Aucun message pour l’instant.
app-mailbox-no-subject = (sans objet)
app-mailbox-to-date = À { $to } · { $date }
app-mailbox-to = À
app-mailbox-date = Date
app-mailbox-open-in = Ouvrir dans { $product }

## Le nom de cette langue, dans cette langue (pour le choix des langues)

app-language-name = Français

## Les refus propres à l’application (ceux du cœur sont dans errors/)

app-error-no-settings-folder = Il n’y a pas de dossier pour les paramètres sur cet ordinateur (pas de répertoire personnel).
app-error-settings-unwritable = Les paramètres n’ont pas pu être enregistrés dans { $file } ({ $problem }) ; vérifiez que le dossier vous appartient.
app-error-server-url = Cette adresse de serveur ne peut pas être utilisée : { $problem }.
app-error-language-unknown = Il n’y a pas de textes pour la langue « { $language } ».
app-error-config = La configuration de { $product } ne peut pas être utilisée : { $problem }
app-error-restart = Une erreur s’est produite dans l’application ; redémarrez-la.
app-error-proof-missing = Ouvrez le lien du mail, ou saisissez votre adresse e-mail et le code.
app-error-link = { $why } Utilisez le lien du mail de réinitialisation le plus récent, ou saisissez plutôt le code.
app-error-link-not-reset = Ce lien { $product } ne mène pas à une réinitialisation de mot de passe.
app-error-link-too-long = Ce lien est bien trop long pour être un lien { $product }.
app-error-link-spaces = Ce lien contient des espaces ou des sauts de ligne.
app-error-link-unreadable = Ce lien n’a pas pu être lu.
app-error-link-not-ours = Ce n’est pas un lien { $product }.
app-error-link-extra = Ce lien { $product } comporte des parties qu’un lien de réinitialisation n’a jamais.
app-error-link-two-tokens = Ce lien contient deux jetons.
app-error-link-no-token = Ce lien ne contient aucun jeton de réinitialisation.
app-error-link-damaged = Le jeton de ce lien est endommagé ; il a peut-être été coupé par le logiciel de messagerie.
app-error-other-issuer-server = Ce lien a été créé par { $maker }, pas par le serveur auquel cette application est connectée ({ $url }). Ouvrez le lien d’un mail envoyé par le serveur de votre organisation, ou adressez-vous à votre administrateur.
app-error-other-issuer-local = Ce lien a été créé par { $maker }, mais cette application utilise son propre stockage sur cet ordinateur. Pour utiliser le serveur de votre organisation, saisissez son adresse dans les Paramètres (demandez-la à votre administrateur).
app-error-maker-local = une autre installation de { $product } sans adresse publique, comme le stockage propre de l’application { $product } sur un ordinateur
app-error-maker-server = un autre serveur { $product } ({ $issuer })
app-error-ca-unreadable = Le fichier d’AC { $file } ne peut pas être lu ({ $problem }) ; vérifiez server_ca_file.
app-error-ca-empty = Le fichier d’AC { $file } ne contient aucun certificat PEM ; vérifiez server_ca_file.
app-error-server-setup = La connexion au serveur ne peut pas être mise en place : { $problem }
app-error-server-not-rekey = { $url } a répondu, mais pas comme le fait un serveur { $product } ; vérifiez l’adresse, ou adressez-vous à votre administrateur.
app-error-server-too-old = Le serveur { $product } à l’adresse { $url } est trop ancien pour { $what } ; demandez à votre administrateur de le mettre à jour.
app-error-server-error = Le serveur { $product } à l’adresse { $url } a rencontré un problème (HTTP { $status }) ; réessayez dans un instant.
app-error-server-untrusted = Le serveur { $product } à l’adresse { $url } ne peut pas être considéré comme fiable : { $why }. Rien n’a été envoyé. Demandez le fichier d’AC à votre administrateur et définissez server_ca_file dans les Paramètres.
app-error-certificate-expired = son certificat a expiré
app-error-certificate-name = son certificat est établi pour un autre nom que { $host }
app-error-certificate-unknown = son certificat n’est pas de ceux auxquels cet ordinateur fait confiance
app-error-server-slow = Le serveur { $product } à l’adresse { $url } n’a pas répondu à temps ; réessayez dans un instant.
app-error-server-unreachable = Le serveur { $product } à l’adresse { $url } est injoignable. Vérifiez votre connexion réseau ; si cela se reproduit, adressez-vous à votre administrateur.
app-error-switched = Le serveur a été changé dans les Paramètres entre-temps ; reconnectez-vous.
app-error-mailbox-server = Le mail vient du serveur de votre organisation ; consultez votre logiciel de messagerie.
app-error-mailbox-smtp = Le mail part vers un serveur de messagerie, pas vers la boîte locale ; consultez votre logiciel de messagerie.
app-error-mailbox-unreadable = La boîte aux lettres locale { $folder } ne peut pas être lue ; vérifiez que le dossier existe et qu’il vous appartient.
app-error-message-missing = Ce message n’existe pas dans la boîte aux lettres locale.
app-error-message-gone = Ce message n’est plus dans la boîte aux lettres locale.
app-error-message-unreadable = Ce message n’a pas pu être lu.
app-error-this-app = cette application
app-mail-language-default = La langue par défaut de { $product }
